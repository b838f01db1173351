package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigNamesTheNodesFiles(t *testing.T) {
	b := Binaries{Dir: "/cache/g", Runsc: "/cache/g/runsc", Shim: "/cache/g/containerd-shim-runsc-v1"}
	f := Config("/var/lib/flotilla/nodes/7-3/gvisor", b, PlatformSystrap)
	if f.ShimConfigPath != "/var/lib/flotilla/nodes/7-3/gvisor/runsc.toml" {
		t.Errorf("shim config at %q", f.ShimConfigPath)
	}
	for _, want := range []string{
		`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]` + "\n",
		`  runtime_type = "io.containerd.runsc.v1"` + "\n",
		`  runtime_path = "/cache/g/containerd-shim-runsc-v1"` + "\n",
		`  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]` + "\n",
		`    TypeUrl = "io.containerd.runsc.v1.options"` + "\n",
		`    ConfigPath = "/var/lib/flotilla/nodes/7-3/gvisor/runsc.toml"` + "\n",
	} {
		if !strings.Contains(f.Containerd, want) {
			t.Errorf("containerd tables lack %q:\n%s", want, f.Containerd)
		}
	}
	for _, want := range []string{
		`binary_name = "/cache/g/runsc"` + "\n",
		`root = "/var/lib/flotilla/nodes/7-3/gvisor/root"` + "\n",
		"[runsc_config]\n",
		`  platform = "systrap"` + "\n",
	} {
		if !strings.Contains(f.ShimConfig, want) {
			t.Errorf("shim config lacks %q:\n%s", want, f.ShimConfig)
		}
	}
	if Config("/d", b, PlatformKVM).ShimConfig == f.ShimConfig {
		t.Error("the platform does not reach the shim config")
	}
}

func TestTOMLStringsAreQuoted(t *testing.T) {
	for in, want := range map[string]string{
		`/a b/c`:  `"/a b/c"`,
		`a"b\c`:   `"a\"b\\c"`,
		"a\nb\tc": `"a\u000Ab\u0009c"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestEnvPutsTheBinariesFirstOnPATH(t *testing.T) {
	b := Binaries{Dir: "/cache/g"}
	got := b.Env([]string{"HOME=/root", "PATH=/usr/bin:/bin"})
	want := []string{"HOME=/root", "PATH=/cache/g:/usr/bin:/bin"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Env = %q, want %q", got, want)
	}
	got = b.Env([]string{"HOME=/root"})
	if p := got[len(got)-1]; !strings.HasPrefix(p, "PATH=/cache/g:") || !strings.Contains(p, "/usr/bin") {
		t.Errorf("without a PATH, Env gives %q", p)
	}
}

// KVM is chosen only where the device opens and a sandbox starts on it.
func TestPlatformIsKVMWhereASandboxStartsOnIt(t *testing.T) {
	if got := platformFor(filepath.Join(t.TempDir(), "kvm"), "/bin/true"); got != PlatformSystrap {
		t.Errorf("without the device: %s", got)
	}
	dev := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := platformFor(dev, "/bin/false"); got != PlatformSystrap {
		t.Errorf("with a device that opens and a sandbox that fails to start: %s", got)
	}
	if got := platformFor(dev, "/bin/true"); got != PlatformKVM {
		t.Errorf("with a device that opens and a sandbox that starts: %s", got)
	}
}

func TestPatchesFitOnceOrFail(t *testing.T) {
	p := patches[1]
	got, err := p.apply("a\n" + p.old + "\nb\n")
	if err != nil || got != "a\n"+p.new+"\nb\n" {
		t.Errorf("apply = %q, %v", got, err)
	}
	if _, err := p.apply("a\n"); err == nil {
		t.Error("a patch applied to a file without its statement")
	}
	if _, err := p.apply(p.old + p.old); err == nil {
		t.Error("a patch applied to a statement found twice")
	}
	for _, p := range patches {
		if strings.Contains(p.new, p.old) {
			t.Errorf("patch of %s keeps the statement it replaces, so it would apply twice", p.file)
		}
	}
}

func TestTeardownUnmountsTheNullNetNS(t *testing.T) {
	dir := t.TempDir()
	if err := Teardown(dir); err != nil {
		t.Errorf("a directory runsc never ran in: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	ns := filepath.Join(dir, "root", "k8s.io")
	if err := os.MkdirAll(ns, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(ns, nullNetNS)
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // stacked, as concurrent runsc invocations leave it
		if err := syscall.Mount("/proc/self/ns/net", target, "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("bind mount: %v", err)
		}
	}
	t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH); syscall.Unmount(target, syscall.MNT_DETACH) })
	if err := Teardown(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("after Teardown: %v", err)
	}
}

// TestContainerdAcceptsTheConfig appends the handler to a configuration of
// the shape real nodes use and has containerd parse it.
func TestContainerdAcceptsTheConfig(t *testing.T) {
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("no containerd on PATH")
	}
	dir := t.TempDir()
	b := Binaries{Dir: dir, Runsc: filepath.Join(dir, RunscName), Shim: filepath.Join(dir, ShimName)}
	f := Config(filepath.Join(dir, "gvisor"), b, PlatformSystrap)
	base := `version = 2
root = "` + dir + `/root"
state = "` + dir + `/state"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "flotilla.local/pause:x"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
`
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(base+f.Containerd), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(containerd, "--config", path, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd rejects the configuration: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{
		`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]`,
		`runtime_type = "io.containerd.runsc.v1"`,
		`ConfigPath = "` + f.ShimConfigPath + `"`,
		`TypeUrl = "io.containerd.runsc.v1.options"`,
		`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("containerd's view of the configuration lacks %q", want)
		}
	}
}

// TestRunscRunsUnderItsOwnKernel builds runsc and the shim (minutes the
// first time on a machine, cached after) and runs uname in a sandbox: the
// kernel release it reports is gVisor's, not the host's.
func TestRunscRunsUnderItsOwnKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gVisor")
	}
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root")
	}
	if _, err := exec.LookPath("go"); err != nil && !Cached() {
		t.Skip("no go command to build gVisor with")
	}
	if d, ok := t.Deadline(); ok && !Cached() && time.Until(d) < 12*time.Minute {
		t.Skip("building gVisor takes up to 12 minutes on two cores the first time: run go test with -timeout 20m")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	b, err := Build(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gVisor %s in %s (%s)", Version, b.Dir, time.Since(start).Round(time.Second))
	if out, err := exec.Command(b.Runsc, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), Version) {
		t.Errorf("runsc --version: %v\n%s", err, out)
	}
	if out, err := exec.Command(b.Shim, "-v").CombinedOutput(); err != nil {
		t.Errorf("%s -v: %v\n%s", ShimName, err, out)
	}

	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSpace(string(release))

	platform := b.Platform()
	cmd := exec.CommandContext(ctx, b.Runsc, "--root", t.TempDir(), "--platform", platform, "--network", "none", "do", "uname", "-r")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderrOf(err))
	}
	inside := strings.TrimSpace(string(out))
	t.Logf("platform %s: host kernel %s, sandbox kernel %s", platform, host, inside)
	if inside == "" || inside == host {
		t.Errorf("the sandbox reports kernel %q, the host runs %q: not a kernel of its own", inside, host)
	}
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
