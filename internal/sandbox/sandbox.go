// Package sandbox runs a real node's "sandboxed" pods under their own
// kernel: gVisor's runsc, an application kernel in user space, behind the
// runtime class "sandboxed" whose containerd handler is "runsc".
//
// Nothing of gVisor ships with Debian, so runsc and its containerd shim
// (containerd-shim-runsc-v1) are built once per machine from the Go module
// gvisor.dev/gvisor at a pinned version, statically (CGO_ENABLED=0), into
// the user's cache directory, as kubebin does for another Kubernetes
// version's control plane. The build patches two lines of the shim for
// the hosts real nodes run on (see patches):
//   - the shim lowers its own OOM score to -999, which needs
//     CAP_SYS_RESOURCE; without it the shim keeps containerd's score
//     instead of failing to start;
//   - the shim library of containerd 2 answers "start" with JSON, which
//     containerd 1.6 cannot read; the shim answers with the plain socket
//     address, which every containerd reads.
//
// runsc runs on the KVM platform where it can start a sandbox on it and on
// systrap (seccomp traps, no virtualization needed) elsewhere; see
// Binaries.Platform.
// Config gives what a node's containerd needs: the runtime handler's
// tables for its configuration and the shim's own configuration file.
// containerd 1.6 finds the shim on its PATH only (it ignores runtime_path
// when it starts a pod), so the node starts containerd with Binaries.Env.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"flotilla.dev/flotilla/internal/buildcache"
)

// Version is the version of the module gvisor.dev/gvisor that runsc and the
// shim are built from: its Go branch, published as pseudo-versions only.
const Version = "v0.0.0-20260905035102-160fafc42237"

// The names Kubernetes and containerd know the sandboxed runtime by.
const (
	// RuntimeClass is the name of the RuntimeClass pods ask for.
	RuntimeClass = "sandboxed"
	// Handler is the RuntimeClass's handler: the name of the runtime in
	// containerd's CRI configuration.
	Handler = "runsc"
	// RuntimeType is the containerd runtime the handler runs, which
	// containerd starts as the binary ShimName.
	RuntimeType = "io.containerd.runsc.v1"
	// ShimName is the shim's file name, which containerd derives from
	// RuntimeType.
	ShimName = "containerd-shim-runsc-v1"
	// RunscName is runsc's file name.
	RunscName = "runsc"
)

// Platforms runsc can run on here.
const (
	PlatformKVM     = "kvm"
	PlatformSystrap = "systrap"
)

// Binaries are the built gVisor programs.
type Binaries struct {
	// Dir holds both; containerd needs it on its PATH (see Env).
	Dir string
	// Runsc is the runtime, Dir/runsc.
	Runsc string
	// Shim is containerd's shim, Dir/containerd-shim-runsc-v1.
	Shim string
}

// Env is environ (as from os.Environ) with b.Dir first on PATH, for the
// containerd that runs the sandboxed runtime class.
func (b Binaries) Env(environ []string) []string {
	out := make([]string, 0, len(environ)+1)
	path := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return append(out, "PATH="+b.Dir+string(filepath.ListSeparator)+path)
}

// cacheName is the build cache directory of this version and patch set:
// a changed patch is a new directory, so it is built again.
func cacheName() string {
	return fmt.Sprintf("gvisor-%s-p%d-%s-%s", Version, patchLevel, runtime.GOOS, runtime.GOARCH)
}

// Cached says whether both programs are built, so that Build returns at
// once.
func Cached() bool {
	dir, err := buildcache.Dir(cacheName())
	return err == nil && buildcache.IsExecutable(filepath.Join(dir, RunscName)) &&
		buildcache.IsExecutable(filepath.Join(dir, ShimName))
}

// Build returns runsc and the shim, building them first if this machine
// has not (4 to 7 minutes on two cores the first time, runsc most of it;
// it needs the go command and the Go module proxy). Concurrent callers,
// in this process or others, build once. logf, if set, hears when a build
// starts.
func Build(ctx context.Context, logf func(format string, args ...any)) (Binaries, error) {
	name := cacheName()
	var bins Binaries
	for _, p := range []struct {
		file, pkg string
		out       *string
	}{
		{RunscName, "gvisor.dev/gvisor/runsc", &bins.Runsc},
		{ShimName, "gvisor.dev/gvisor/shim", &bins.Shim},
	} {
		bin, err := buildcache.Program(name, p.file, func(dir, out string) error {
			if logf != nil {
				logf("building gVisor's %s %s into %s (once per machine; minutes on two cores)", p.file, Version, dir)
			}
			return build(ctx, dir, p.pkg, out)
		})
		if err != nil {
			return Binaries{}, fmt.Errorf("gVisor %s: %w", p.file, err)
		}
		*p.out = bin
	}
	bins.Dir = filepath.Dir(bins.Runsc)
	return bins, nil
}

// Files are what a node's containerd needs for the runtime handler.
type Files struct {
	// Containerd is the handler's tables, to append to a containerd
	// configuration of version 2 after its CRI plugin's tables.
	Containerd string
	// ShimConfigPath is where ShimConfig goes: dir/runsc.toml.
	ShimConfigPath string
	// ShimConfig is the shim's configuration: which runsc, its state
	// directory (dir/root) and its flags.
	ShimConfig string
}

// Config is the runtime handler of a node whose gVisor files live in dir
// (an absolute path of the node's own, so that nodes on one host keep
// their sandboxes apart), running b on platform.
func Config(dir string, b Binaries, platform string) Files {
	const table = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.` + Handler + `]`
	shimConfig := filepath.Join(dir, "runsc.toml")
	var c strings.Builder
	fmt.Fprintf(&c, "%s\n", table)
	fmt.Fprintf(&c, "  runtime_type = %s\n", tomlString(RuntimeType))
	fmt.Fprintf(&c, "  # containerd 1.6 ignores this when it starts a pod (it looks on its PATH); later ones use it.\n")
	fmt.Fprintf(&c, "  runtime_path = %s\n", tomlString(b.Shim))
	fmt.Fprintf(&c, "  %s\n", strings.TrimSuffix(table, "]")+`.options]`)
	fmt.Fprintf(&c, "    TypeUrl = %s\n", tomlString(RuntimeType+".options"))
	fmt.Fprintf(&c, "    ConfigPath = %s\n", tomlString(shimConfig))

	var s strings.Builder
	fmt.Fprintf(&s, "binary_name = %s\n", tomlString(b.Runsc))
	fmt.Fprintf(&s, "root = %s\n", tomlString(filepath.Join(dir, "root")))
	fmt.Fprintf(&s, "\n[runsc_config]\n")
	fmt.Fprintf(&s, "  platform = %s\n", tomlString(platform))
	return Files{Containerd: c.String(), ShimConfigPath: shimConfig, ShimConfig: s.String()}
}

// Write writes the shim's configuration into its directory.
func (f Files) Write() error {
	if err := os.MkdirAll(filepath.Dir(f.ShimConfigPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.ShimConfigPath, []byte(f.ShimConfig), 0o644)
}

// Teardown unmounts what runsc leaves mounted in a node's gVisor directory
// dir once its sandboxes have stopped: the empty network namespace it pins
// for its gofers, root/NAMESPACE/null-netns, possibly mounted more than
// once. Removing dir fails (EBUSY) until then.
func Teardown(dir string) error {
	root := filepath.Join(dir, "root")
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	paths := []string{filepath.Join(root, nullNetNS)}
	for _, e := range entries {
		if e.IsDir() {
			paths = append(paths, filepath.Join(root, e.Name(), nullNetNS))
		}
	}
	for _, p := range paths {
		if err := unmount(p); err != nil {
			return err
		}
	}
	return nil
}

// unmount unmounts every mount on p, if any.
func unmount(p string) error {
	for {
		err := syscall.Unmount(p, syscall.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		return fmt.Errorf("unmounting %s: %w", p, err)
	}
}

// nullNetNS is the file runsc bind-mounts its gofers' empty network
// namespace on, in the directory of each containerd namespace under its root.
const nullNetNS = "null-netns"

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
