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

// runs starts a sandbox on platform that runs the host's true.
func runs(runsc, platform string) error {
	dir, err := os.MkdirTemp("", "runsc-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer Teardown(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, runsc, "--root", filepath.Join(dir, "root"), "--platform", platform, "--network", "none", "do", "true").Run()
}
