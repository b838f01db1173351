package testenv

import (
	"context"
	"os"
	"path/filepath"

	"flotilla.dev/flotilla/internal/attach"
)

// AgentProcess is cluster name's agent against member, heartbeating every
// second, with its data dir dir; not started.
func AgentProcess(name string, member *Process, dir string) *Process {
	return NewProcess("agent-"+name, dir, "", "agent", "--cluster-kubeconfig", member.Kubeconfig, "--data-dir", dir, "--heartbeat-interval", "1s")
}

// AttachAgent attaches name to e's hub, in group ("" for the default), and
// runs its agent against member with its data dir in dir/agent-NAME. It
// returns once the agent heartbeats; the caller stops it.
func (e *Env) AttachAgent(ctx context.Context, name, group string, member *Process, dir string) (*Process, error) {
	boot, err := attach.Attach(ctx, e.Hub.Client, e.Hub.Config, attach.Options{Name: name, Group: group})
	if err != nil {
		return nil, err
	}
	adir := filepath.Join(dir, "agent-"+name)
	if err := os.MkdirAll(adir, 0o700); err != nil {
		return nil, err
	}
	bootPath := filepath.Join(adir, "bootstrap.kubeconfig")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		return nil, err
	}
	a := AgentProcess(name, member, adir)
	a.Args = append(a.Args, "--bootstrap-kubeconfig", bootPath)
	return a, a.Run()
}
