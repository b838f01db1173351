package up

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"flotilla.dev/flotilla/internal/procs"
)

// watch waits until ctx ends or one of the processes up started exits
// unexpectedly. agents maps each agent process to its cluster's name.
//
// An agent that exits cleanly after forgetting its identity has been
// detached (`flotilla cluster detach`): that is the agent's normal end, not a
// crash, so the rest of the fleet keeps running, and so does the detached
// local cluster, now without an agent. Taking it for a crash stopped the hub
// under the detach that was waiting for it.
func watch(ctx context.Context, out io.Writer, l Layout, all []*procs.Proc, dirs map[*procs.Proc]string, agents map[*procs.Proc]string) error {
	done := make(chan *procs.Proc, len(all))
	for _, p := range all {
		go func() { <-p.Done(); done <- p }()
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "Stopping...")
			return nil
		case p := <-done:
			if name, ok := agents[p]; ok && detached(p, l, name) {
				fmt.Fprintf(out, "Cluster %s was detached: its agent has exited and the local cluster keeps running without it (running up again attaches it again).\n", name)
				continue
			}
			return fmt.Errorf("%s exited unexpectedly: %v; see the logs in %s", p.Name, p.Err(), filepath.Join(dirs[p], "logs"))
		}
	}
}

// detached tells whether an agent that has exited did so at the end of a
// detach: it exits with success only then (or when stopped, and up stops
// its agents only after watch has returned), and a detach removes its
// identity, which a stopped agent keeps.
func detached(p *procs.Proc, l Layout, cluster string) bool {
	if p.Err() != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(l.AgentDir(cluster), "hub.kubeconfig"))
	return os.IsNotExist(err)
}
