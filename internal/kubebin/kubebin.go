// Package kubebin finds the Kubernetes components of a version: the
// control plane's, and a real node's kubelet and kube-proxy. The version
// the flotilla binary embeds runs from the binary itself; another runs
// from a component binary built once per machine from a small Go module
// that requires k8s.io/kubernetes at that version, and is then kept in the
// user's cache directory. Either is called the same way:
// BINARY kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy FLAGS.
package kubebin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	"flotilla.dev/flotilla/internal/buildcache"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/version"
)

// Supported are the Kubernetes versions a local cluster can run, oldest
// first: one minor apart, so that an upgrade between them is one step.
var Supported = []string{"v1.36.3", "v1.37.2"}

//go:embed main.go.tmpl
var mainGo []byte

// Embedded is the version the flotilla binary runs itself.
func Embedded() string { return version.Kubernetes() }

// Check says why v cannot run locally, or nil.
func Check(v string) error {
	if !slices.Contains(Supported, v) {
		return fmt.Errorf("Kubernetes %s is not a version local clusters run; they run %s (flotilla versions)", v, strings.Join(Supported, ", "))
	}
	return nil
}

// Cached says whether v's components are ready to run without a build.
func Cached(v string) bool {
	if v == Embedded() {
		return true
	}
	dir, err := buildcache.Dir(cacheName(v))
	return err == nil && buildcache.IsExecutable(filepath.Join(dir, "kube"))
}

// Binary returns the binary that runs v's components, building it first
// if v is not embedded and not built yet (about 12 minutes on two cores
// the first time; it needs the go command and the Go module proxy). logf,
// if set, hears when a build starts.
func Binary(ctx context.Context, v string, logf func(format string, args ...any)) (string, error) {
	if err := Check(v); err != nil {
		return "", err
	}
	if v == Embedded() {
		return procs.Self()
	}
	return buildcache.Program(cacheName(v), "kube", func(dir, out string) error {
		if logf != nil {
			logf("building the Kubernetes %s components into %s (once per machine; about 12 minutes on two cores)", v, dir)
		}
		return build(ctx, v, dir, out)
	})
}

// cacheName names v's build by what made it too: a changed main.go makes
// a new binary rather than reusing one without its components.
func cacheName(v string) string {
	sum := sha256.Sum256(mainGo)
	return "kube-" + v + "-" + hex.EncodeToString(sum[:4]) + "-" + runtime.GOOS + "-" + runtime.GOARCH
}

// build writes the component module of version v into dir/src and builds
// it into out.
func build(ctx context.Context, v, dir, out string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("building Kubernetes %s's components needs the go command on PATH (https://go.dev/dl): %w", v, err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	mod, err := moduleFile(ctx, v)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), mod, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), mainGo, 0o644); err != nil {
		return err
	}
	if err := goCmd(ctx, src, "mod", "tidy"); err != nil {
		return err
	}
	pkg := "k8s.io/component-base/version."
	sv, err := utilversion.ParseSemantic(v)
	if err != nil {
		return err
	}
	major, minor := fmt.Sprint(sv.Major()), fmt.Sprint(sv.Minor())
	ldflags := strings.Join([]string{"-s", "-w",
		"-X " + pkg + "gitVersion=" + v,
		"-X " + pkg + "gitMajor=" + major,
		"-X " + pkg + "gitMinor=" + minor,
		"-X " + pkg + "gitTreeState=clean",
	}, " ")
	return goCmd(ctx, src, "build", "-trimpath", "-ldflags", ldflags, "-o", out, ".")
}

// moduleFile is the go.mod of the component module of v: it requires
// k8s.io/kubernetes v and, as Kubernetes' own go.mod replaces its staging
// modules with directories of its repository, replaces each with the
// module's published version (v0.MINOR.PATCH).
func moduleFile(ctx context.Context, v string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "k8s.io/kubernetes@"+v)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("downloading k8s.io/kubernetes %s: %v: %s", v, err, stderr(err))
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(raw, &info); err != nil || info.Error != "" || info.GoMod == "" {
		return nil, fmt.Errorf("downloading k8s.io/kubernetes %s: %v %s", v, err, info.Error)
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, err
	}
	staging := "v0" + strings.TrimPrefix(v, "v1")
	var b bytes.Buffer
	fmt.Fprintf(&b, "module flotilla.dev/kube-components\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", v)
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(upstream))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "./staging/") {
			fmt.Fprintf(&b, "\t%s => %s %s\n", fields[0], fields[0], staging)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("k8s.io/kubernetes %s's go.mod (%s) replaces no staging modules: not a layout this build knows", v, info.GoMod)
	}
	b.WriteString(")\n")
	return b.Bytes(), nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s in %s: %v\n%s", args[0], dir, err, tail(out, 4<<10))
	}
	return nil
}

func stderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return tail(ee.Stderr, 4<<10)
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Compare orders Kubernetes versions (-1, 0, 1); unparsable ones are equal.
func Compare(a, b string) int {
	va, errA := utilversion.ParseSemantic(a)
	vb, errB := utilversion.ParseSemantic(b)
	if errA != nil || errB != nil {
		return 0
	}
	switch {
	case va.LessThan(vb):
		return -1
	case vb.LessThan(va):
		return 1
	}
	return 0
}
