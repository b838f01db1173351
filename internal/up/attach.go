package up

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
)

// attachAll attaches each local cluster to the hub (unless its agent already
// holds an identity from an earlier run), starts its agent, and waits until
// every cluster is Healthy.
func attachAll(ctx context.Context, l Layout, self string, n int) ([]*procs.Proc, error) {
	cfg, err := kubeconfig.Load(l.HubKubeconfig())
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return nil, err
	}
	var agents []*procs.Proc
	for i := 1; i <= n; i++ {
		name := l.ClusterName(i)
		dir := l.AgentDir(name)
		args := []string{"agent", "--cluster-kubeconfig", filepath.Join(l.ClusterDir(name), "kubeconfig"), "--data-dir", dir}
		if _, err := os.Stat(filepath.Join(dir, "hub.kubeconfig")); err != nil {
			boot, err := freshAttach(ctx, cl, cfg, name, l)
			if err != nil {
				return agents, err
			}
			args = append(args, "--bootstrap-kubeconfig", boot)
		}
		p, err := procs.Start("agent-"+name, self, args, filepath.Join(dir, "logs", "agent.out"))
		if err != nil {
			return agents, err
		}
		agents = append(agents, p)
	}
	for i := 1; i <= n; i++ {
		name := l.ClusterName(i)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			var c fv1.Cluster
			if err := cl.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return c.Status.Health == fv1.HealthHealthy, nil
		})
		if err != nil {
			return agents, fmt.Errorf("cluster %s not Healthy after 1m; see %s", name, filepath.Join(l.AgentDir(name), "logs"))
		}
	}
	return agents, nil
}

// freshAttach attaches name, replacing a Cluster left from an interrupted
// run, and writes the bootstrap kubeconfig next to the cluster.
func freshAttach(ctx context.Context, cl client.Client, hubCfg *rest.Config, name string, l Layout) (string, error) {
	if err := cl.Get(ctx, client.ObjectKey{Name: name}, &fv1.Cluster{}); err == nil {
		if err := attach.Detach(ctx, cl, name, true, 30*time.Second); err != nil {
			return "", err
		}
	} else if !apierrors.IsNotFound(err) {
		return "", err
	}
	boot, err := attach.Attach(ctx, cl, hubCfg, attach.Options{Name: name, Labels: map[string]string{"flotilla.dev/local": "true"}})
	if err != nil {
		return "", fmt.Errorf("attaching %s: %w", name, err)
	}
	path := filepath.Join(l.ClusterDir(name), "bootstrap.kubeconfig")
	return path, os.WriteFile(path, boot, 0o600)
}
