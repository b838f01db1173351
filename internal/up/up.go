// Package up is the quickstart: a hub on this machine that makes N local
// clusters through its local provider, as 'flotilla cluster create' would,
// so they can be scaled, upgraded and deleted like any other. Ctrl-C stops
// the hub, which stops its clusters; running up again starts them again
// with their state.
package up

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/lifecycle"
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
	// RealNodes is the number of real nodes per cluster (package realnode).
	RealNodes int
	// Out receives progress for people.
	Out io.Writer
}

// Layout names where up keeps each part under its data dir.
type Layout struct{ Root string }

// HubDir is the hub's data dir; the clusters it makes live in its clusters/.
func (l Layout) HubDir() string { return filepath.Join(l.Root, "hub") }

// HubKubeconfig is the hub's admin kubeconfig.
func (l Layout) HubKubeconfig() string { return filepath.Join(l.HubDir(), "admin.kubeconfig") }

// ClusterName is the name of the i-th local cluster (from 1).
func (l Layout) ClusterName(i int) string { return "cluster-" + strconv.Itoa(i) }

// Kubeconfig is where up writes the named cluster's admin kubeconfig.
func (l Layout) Kubeconfig(name string) string {
	return filepath.Join(l.Root, "clusters", name, "kubeconfig")
}

// LocalLabel marks the clusters up makes.
const LocalLabel = "flotilla.dev/local"

// Run starts the hub, has it make the clusters, waits until they are
// Healthy, reports, and stops the hub (and so the clusters) when ctx ends.
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
	hubProc, err := procs.Start("hub", self, []string{"hub", "--data-dir", l.HubDir()}, filepath.Join(l.HubDir(), "logs", "hub.out"))
	if err != nil {
		return err
	}
	// The hub stops the clusters it made before it exits.
	defer hubProc.Stop(60 * time.Second)
	if err := hubProc.WaitReady(l.HubDir(), 2*time.Minute); err != nil {
		return fmt.Errorf("%v; see the logs in %s", err, filepath.Join(l.HubDir(), "logs"))
	}
	if err := makeClusters(ctx, l, c); err != nil {
		return err
	}

	fmt.Fprintf(c.Out, "Flotilla is up (%.1fs): hub and %d local cluster(s) under %s\n\n", time.Since(start).Seconds(), c.Clusters, l.Root)
	fmt.Fprintf(c.Out, "  hub        %s\n", l.HubKubeconfig())
	for i := 1; i <= c.Clusters; i++ {
		name := l.ClusterName(i)
		fmt.Fprintf(c.Out, "  %-10s %s\n", name, l.Kubeconfig(name))
	}
	fmt.Fprintf(c.Out, "\nEvery cluster is attached to the hub. Try:\n  flotilla cluster list --hub-kubeconfig %s\n  kubectl --kubeconfig %s get clusters,clustergroups,workspaces\n", l.HubKubeconfig(), l.HubKubeconfig())
	if c.Clusters > 0 {
		fmt.Fprintf(c.Out, "  kubectl --kubeconfig %s get nodes\n", l.Kubeconfig(l.ClusterName(1)))
	}
	fmt.Fprintf(c.Out, "\nPress Ctrl-C to stop.\n")

	select {
	case <-ctx.Done():
		fmt.Fprintln(c.Out, "Stopping...")
		return nil
	case <-hubProc.Done():
		return fmt.Errorf("the hub exited unexpectedly: %v; see the logs in %s", hubProc.Err(), filepath.Join(l.HubDir(), "logs"))
	}
}

// makeClusters has the hub make the clusters that it does not have yet,
// waits until every one is Healthy, and writes their kubeconfigs.
func makeClusters(ctx context.Context, l Layout, c Config) error {
	cfg, err := kubeconfig.Load(l.HubKubeconfig())
	if err != nil {
		return err
	}
	cl, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err
	}
	for i := 1; i <= c.Clusters; i++ {
		name := l.ClusterName(i)
		err := cl.Create(ctx, &fv1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LocalLabel: "true"}},
			Spec: fv1.ClusterSpec{Lifecycle: &fv1.ClusterLifecycle{
				Provider: fv1.ProviderLocal, Version: kubebin.Embedded(),
				NodePools: c.pools(),
			}},
		})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("making %s: %w", name, err)
		}
	}
	for i := 1; i <= c.Clusters; i++ {
		name := l.ClusterName(i)
		var last fv1.Cluster
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := cl.Get(ctx, client.ObjectKey{Name: name}, &last); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			if last.Spec.Lifecycle == nil {
				return false, fmt.Errorf("cluster %s on the hub was attached by an earlier version of up; detach it ('flotilla cluster detach %s --force') and run up again to have it made", name, name)
			}
			st := last.Status.Lifecycle
			return st != nil && st.Phase == fv1.LifecycleReady && last.Status.Health == fv1.HealthHealthy, nil
		})
		if err != nil {
			why := "no status yet"
			if st := last.Status.Lifecycle; st != nil {
				why = string(st.Phase) + ": " + st.Progress
				if cond := meta.FindStatusCondition(st.Conditions, fv1.ConditionReady); cond != nil {
					why += " (" + cond.Message + ")"
				}
			}
			return fmt.Errorf("cluster %s not Healthy after 2m: %v; %s; see the logs in %s", name, err, why, filepath.Join(l.HubDir(), "clusters", name, "logs"))
		}
		if err := writeKubeconfig(ctx, cl, l, name); err != nil {
			return err
		}
		// The status may be an earlier run's: wait for the cluster itself.
		if err := serving(ctx, l.Kubeconfig(name)); err != nil {
			return fmt.Errorf("cluster %s does not serve after 2m: %v; see the logs in %s", name, err, filepath.Join(l.HubDir(), "clusters", name, "logs"))
		}
	}
	return nil
}

// serving waits until the apiserver of the kubeconfig at path is ready.
func serving(ctx context.Context, path string) error {
	cfg, err := kubeconfig.Load(path)
	if err != nil {
		return err
	}
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// writeKubeconfig writes the cluster's admin kubeconfig, as the hub keeps
// it, where up's report says.
func writeKubeconfig(ctx context.Context, cl client.Client, l Layout, name string) error {
	var s corev1.Secret
	if err := cl.Get(ctx, client.ObjectKey{Namespace: hub.SystemNamespace, Name: lifecycle.KubeconfigSecret(name)}, &s); err != nil {
		return fmt.Errorf("reading the kubeconfig of %s: %w", name, err)
	}
	path := l.Kubeconfig(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, s.Data["value"], 0o600)
}

// pools are the node pools of each cluster: the simulated workers and,
// when asked for, the real ones.
func (c Config) pools() []fv1.NodePool {
	pools := []fv1.NodePool{{Name: "workers", Replicas: int32(c.Nodes), CPU: resource.MustParse("4"), Memory: resource.MustParse("16Gi")}}
	if c.RealNodes > 0 {
		pools = append(pools, fv1.NodePool{Name: "real", Replicas: int32(c.RealNodes), Real: true})
	}
	return pools
}
