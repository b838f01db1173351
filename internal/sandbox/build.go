package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// patchLevel numbers the patch set; it is part of the cache directory's
// name, so raise it whenever patches change.
const patchLevel = 1

// A patch replaces one statement, found exactly once, in a vendored file of
// the build module.
type patch struct {
	file     string // under vendor/
	old, new string
}

// patches adapt the shim to the hosts real nodes run on (the package
// comment says why). They are applied to the vendored copy of the modules
// in the build directory; nothing of gVisor or containerd is kept in this
// repository.
var patches = []patch{
	{
		file: "gvisor.dev/gvisor/pkg/shim/v1/manager.go",
		old:  "if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil {",
		new:  "if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil && !os.IsPermission(err) {",
	},
	{
		file: "github.com/containerd/containerd/v2/pkg/shim/shim.go",
		old:  "data, err := json.Marshal(&params)",
		new:  "data, err := []byte(params.Address), error(nil); _ = json.Marshal",
	},
}

const deps = `//go:build tools

// Package deps names the programs this module builds, so that go mod
// tidy and go mod vendor keep what they need.
package deps

import (
	_ "gvisor.dev/gvisor/runsc"
	_ "gvisor.dev/gvisor/shim"
)
`

// build builds pkg of gvisor.dev/gvisor at Version into out, from a module
// written into dir/src whose dependencies are vendored and patched.
func build(ctx context.Context, dir, pkg, out string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("building gVisor needs the go command on PATH (https://go.dev/dl): %w", err)
	}
	src := filepath.Join(dir, "src")
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	mod := fmt.Sprintf("module flotilla.dev/gvisor-build\n\ngo 1.26.0\n\nrequire gvisor.dev/gvisor %s\n", Version)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "deps.go"), []byte(deps), 0o644); err != nil {
		return err
	}
	if err := goCmd(ctx, src, "mod", "tidy"); err != nil {
		return err
	}
	if err := goCmd(ctx, src, "mod", "vendor"); err != nil {
		return err
	}
	if err := applyPatches(filepath.Join(src, "vendor")); err != nil {
		return err
	}
	ldflags := "-s -w -X gvisor.dev/gvisor/runsc/version.version=" + Version
	if err := goCmd(ctx, src, "build", "-mod=vendor", "-trimpath", "-ldflags", ldflags, "-o", out, pkg); err != nil {
		return err
	}
	// The vendored tree is about 100 MB; the next build makes it again.
	return os.RemoveAll(filepath.Join(src, "vendor"))
}

func applyPatches(vendor string) error {
	for _, p := range patches {
		path := filepath.Join(vendor, filepath.FromSlash(p.file))
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("patching gVisor %s: %w", Version, err)
		}
		text, err := p.apply(string(b))
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (p patch) apply(text string) (string, error) {
	if n := strings.Count(text, p.old); n != 1 {
		return "", fmt.Errorf("patching gVisor %s: %s has %q %d times, not once: the patch does not fit this version", Version, p.file, p.old, n)
	}
	return strings.Replace(text, p.old, p.new, 1), nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		if len(out) > 4<<10 {
			out = out[len(out)-4<<10:]
		}
		return fmt.Errorf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}
