// Package up is the quickstart: a hub and N local clusters on this machine,
// each a child process of the flotilla binary, stopped together.
package up

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/procs"
)

// Config describes what `flotilla up` starts.
type Config struct {
	// DataDir holds the hub and every cluster; default ./.flotilla.
	DataDir string
	// Clusters is the number of local clusters.
	Clusters int
	// Nodes is the number of simulated nodes per cluster.
	Nodes int
	// Out receives progress for people.
	Out io.Writer
}

// Layout names where up keeps each part under its data dir.
type Layout struct{ Root string }

// HubDir is the hub's data dir.
func (l Layout) HubDir() string { return filepath.Join(l.Root, "hub") }

// HubKubeconfig is the hub's admin kubeconfig.
func (l Layout) HubKubeconfig() string { return filepath.Join(l.HubDir(), "admin.kubeconfig") }

// ClusterName is the name of the i-th local cluster (from 1).
func (l Layout) ClusterName(i int) string { return "cluster-" + strconv.Itoa(i) }

// AgentDir is the data dir of the named cluster's agent.
func (l Layout) AgentDir(name string) string { return filepath.Join(l.ClusterDir(name), "agent") }

// ClusterDir is the data dir of the named local cluster.
func (l Layout) ClusterDir(name string) string { return filepath.Join(l.Root, "clusters", name) }

// Run starts everything, waits until ready, reports, and stops all on ctx end.
func Run(ctx context.Context, c Config) error {
	if c.Clusters < 0 {
		return fmt.Errorf("--clusters must not be negative, got %d", c.Clusters)
	}
	root, err := datadir.Open(c.DataDir)
	if err != nil {
		return err
	}
	defer root.Close()
	l := Layout{Root: root.Path}
	self, err := procs.Self()
	if err != nil {
		return err
	}

	start := time.Now()
	var all []*procs.Proc
	// Stop in parallel; each child stops its own children.
	defer func() { procs.StopAll(10*time.Second, all...) }()
	hub, err := procs.Start("hub", self, []string{"hub", "--data-dir", l.HubDir()}, filepath.Join(l.HubDir(), "logs", "hub.out"))
	if err != nil {
		return err
	}
	all = append(all, hub)
	dirs := map[*procs.Proc]string{hub: l.HubDir()}
	for i := 1; i <= c.Clusters; i++ {
		name := l.ClusterName(i)
		d := l.ClusterDir(name)
		p, err := procs.Start(name, self, []string{"localcluster", "--name", name, "--data-dir", d, "--nodes", strconv.Itoa(c.Nodes)}, filepath.Join(d, "logs", "localcluster.out"))
		if err != nil {
			return err
		}
		all = append(all, p)
		dirs[p] = d
	}
	for _, p := range all {
		if err := p.WaitReady(dirs[p], 2*time.Minute); err != nil {
			return fmt.Errorf("%v; see the logs in %s", err, filepath.Join(dirs[p], "logs"))
		}
	}
	agents, err := attachAll(ctx, l, self, c.Clusters)
	all = append(all, agents...)
	if err != nil {
		return err
	}
	byCluster := map[*procs.Proc]string{}
	for _, p := range agents {
		name := strings.TrimPrefix(p.Name, "agent-")
		dirs[p] = l.AgentDir(name)
		byCluster[p] = name
	}

	fmt.Fprintf(c.Out, "Flotilla is up (%.1fs): hub and %d local cluster(s) under %s\n\n", time.Since(start).Seconds(), c.Clusters, l.Root)
	fmt.Fprintf(c.Out, "  hub        %s\n", l.HubKubeconfig())
	for i := 1; i <= c.Clusters; i++ {
		name := l.ClusterName(i)
		fmt.Fprintf(c.Out, "  %-10s %s\n", name, filepath.Join(l.ClusterDir(name), "kubeconfig"))
	}
	fmt.Fprintf(c.Out, "\nEvery cluster is attached to the hub. Try:\n  flotilla cluster list --hub-kubeconfig %s\n  kubectl --kubeconfig %s get clusters,clustergroups,workspaces\n", l.HubKubeconfig(), l.HubKubeconfig())
	if c.Clusters > 0 {
		fmt.Fprintf(c.Out, "  kubectl --kubeconfig %s get nodes\n", filepath.Join(l.ClusterDir(l.ClusterName(1)), "kubeconfig"))
	}
	fmt.Fprintf(c.Out, "\nPress Ctrl-C to stop.\n")

	return watch(ctx, c.Out, l, all, dirs, byCluster)
}
