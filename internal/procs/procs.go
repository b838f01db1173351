// Package procs starts and stops child processes of the flotilla binary. A
// child dies with its parent (PR_SET_PDEATHSIG), so no process is left behind
// even when the parent is killed; Stop ends it by PID, politely first.
package procs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"flotilla.dev/flotilla/internal/datadir"
)

// Proc is a running child process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Self is the path of the running flotilla binary.
func Self() (string, error) {
	return os.Executable()
}

// Start runs bin with args, appending its output to logFile. env entries
// (KEY=VALUE) are added to the parent's environment.
func Start(name, bin string, args []string, logFile string, env ...string) (*Proc, error) {
	return start(name, bin, args, logFile, &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}, env)
}

// StartDetached is Start for a process that outlives this one: in a
// session of its own, it is not killed when this process dies, and a
// restarted parent finds it again (by the lock of its data dir, say).
func StartDetached(name, bin string, args []string, logFile string) (*Proc, error) {
	return start(name, bin, args, logFile, &syscall.SysProcAttr{Setsid: true}, nil)
}

func start(name, bin string, args []string, logFile string, attr *syscall.SysProcAttr, env []string) (*Proc, error) {
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// PID of the process.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit error once Done is closed.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and, if the process has not exited after grace, SIGKILL.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// StopAll stops ps in parallel.
func StopAll(grace time.Duration, ps ...*Proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop(grace) }()
	}
	wg.Wait()
}

// WaitReady waits until the process marks dir ready, exits, or timeout passes.
func (p *Proc) WaitReady(dir string, timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// The marker holds the PID that wrote it, so a stale one left by a
		// killed process is not mistaken for this one.
		if b, err := os.ReadFile(datadir.ReadyFile(dir)); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(p.PID()) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		case <-deadline:
			return fmt.Errorf("%s not ready after %s", p.Name, timeout)
		case <-tick.C:
		}
	}
}
