// Package local is the local lifecycle provider's hub side: it keeps each
// local cluster's desired state in the cluster's directory under the hub's
// data dir and its supervisor (package localplane) running, finds the
// supervisors a previous hub left running instead of starting them twice,
// and stops them and removes their data when a cluster is deleted.
package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/realnode"
)

// Provider runs local clusters in directories under Root.
type Provider struct {
	// Root holds a directory per cluster.
	Root string
	// Bin is the flotilla binary that runs supervisors; empty for this one.
	Bin string
}

// Dir is cluster's directory.
func (p *Provider) Dir(cluster string) string { return filepath.Join(p.Root, cluster) }

// Desired reads what cluster's supervisor was last told; ok is false for
// a cluster never started.
func (p *Provider) Desired(cluster string) (d localplane.Desired, ok bool, err error) {
	d, err = localplane.ReadDesired(p.Dir(cluster))
	if errors.Is(err, os.ErrNotExist) {
		return d, false, nil
	}
	return d, err == nil, err
}

// Apply tells cluster's supervisor to run d, starting the supervisor if
// none runs.
func (p *Provider) Apply(cluster string, d localplane.Desired) error {
	if err := localplane.WriteDesired(p.Dir(cluster), d); err != nil {
		return err
	}
	return p.EnsureRunning(cluster)
}

// EnsureRunning starts cluster's supervisor unless one holds its directory.
func (p *Provider) EnsureRunning(cluster string) error {
	dir := p.Dir(cluster)
	if _, held := datadir.Holder(dir); held {
		return nil
	}
	bin := p.Bin
	if bin == "" {
		var err error
		if bin, err = procs.Self(); err != nil {
			return err
		}
	}
	_, err := procs.StartDetached("localplane "+cluster, bin, []string{"localplane", "--dir", dir}, filepath.Join(dir, "logs", "supervisor.log"))
	return err
}

// Status is what cluster's supervisor last wrote; ok is false while it has
// written nothing, or no supervisor runs.
func (p *Provider) Status(cluster string) (s localplane.Status, ok bool, err error) {
	if _, held := datadir.Holder(p.Dir(cluster)); !held {
		return s, false, nil
	}
	return localplane.ReadStatus(p.Dir(cluster))
}

// AdminConfig is a client config with cluster-admin rights on cluster.
func (p *Provider) AdminConfig(cluster string) (*rest.Config, error) {
	return kubeconfig.Load(localplane.Kubeconfig(p.Dir(cluster)))
}

// Kubeconfig is cluster's admin kubeconfig, self-contained (certificates
// inline), to hand to whoever may have it.
func (p *Provider) Kubeconfig(cluster string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(localplane.Kubeconfig(p.Dir(cluster)))
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	return clientcmd.Write(*cfg)
}

// Stop stops cluster's supervisor, which stops every component first.
func (p *Provider) Stop(cluster string) error {
	dir := p.Dir(cluster)
	pid, held := datadir.Holder(dir)
	if !held {
		return nil
	}
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if _, held := datadir.Holder(dir); !held {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	if _, held := datadir.Holder(dir); held {
		return fmt.Errorf("the supervisor of cluster %s (pid %d) did not stop", cluster, pid)
	}
	return nil
}

// Delete stops cluster and removes its directory.
func (p *Provider) Delete(cluster string) error {
	if err := p.Stop(cluster); err != nil {
		return err
	}
	if err := realnode.Forget(p.Dir(cluster)); err != nil {
		return fmt.Errorf("removing the real nodes of cluster %s: %w", cluster, err)
	}
	return os.RemoveAll(p.Dir(cluster))
}

// Clusters lists the clusters that have a directory.
func (p *Provider) Clusters() ([]string, error) {
	entries, err := os.ReadDir(p.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, err
}

// StopAll stops every cluster's supervisor: the hub is shutting down.
func (p *Provider) StopAll() {
	names, _ := p.Clusters()
	done := make(chan struct{}, len(names))
	for _, n := range names {
		go func() { p.Stop(n); done <- struct{}{} }()
	}
	for range names {
		<-done
	}
}
