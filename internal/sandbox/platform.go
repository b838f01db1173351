package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// probed holds each runsc's platform, found once per process.
var probed sync.Map // runsc path → platform

// Platform is the platform runsc runs sandboxes on here: kvm where
// /dev/kvm opens for reading and writing and runsc starts a sandbox on it,
// else systrap. A device that opens is not enough: a virtual machine
// without nested virtualization, or with too little of it, has one that
// opens and cannot run a sandbox's guest. The probe starts one sandbox
// the first time a process asks.
func (b Binaries) Platform() string {
	if p, ok := probed.Load(b.Runsc); ok {
		return p.(string)
	}
	p := platformFor("/dev/kvm", b.Runsc)
	probed.Store(b.Runsc, p)
	return p
}

func platformFor(kvm, runsc string) string {
	f, err := os.OpenFile(kvm, os.O_RDWR, 0)
	if err != nil {
		return PlatformSystrap
	}
	f.Close()
	if runs(runsc, PlatformKVM) != nil {
		return PlatformSystrap
	}
	return PlatformKVM
}

// probeTimeout bounds the probe: a sandbox starts in about a second, and
// on some hosts KVM's hangs.
const probeTimeout = 10 * time.Second

// runs starts a sandbox on platform that runs the host's true. runsc do
// makes its bundle in TMPDIR and pins a network namespace there; a probe
// killed at its timeout leaves that mounted, so it is unmounted here.
func runs(runsc, platform string) error {
	dir, err := os.MkdirTemp("", "runsc-probe-")
	if err != nil {
		return err
	}
	defer func() {
		bundles, _ := filepath.Glob(filepath.Join(dir, "runsc-do*"))
		for _, b := range bundles {
			unmount(filepath.Join(b, nullNetNS))
		}
		Teardown(dir)
		os.RemoveAll(dir)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runsc, "--root", filepath.Join(dir, "root"), "--platform", platform, "--network", "none", "do", "true")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	return cmd.Run()
}
