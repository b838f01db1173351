package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/provider/local"
)

// LifecycleOptions say what bench lifecycle measures.
type LifecycleOptions struct {
	Nodes   int // nodes of each cluster made
	ScaleTo int // nodes the scale step goes up to, and back from
}

// The versions bench lifecycle makes and upgrades clusters between.
var (
	lifecycleOlder = kubebin.Supported[0]
	lifecycleNewer = kubebin.Supported[len(kubebin.Supported)-1]
)

// Lifecycle measures the local provider: it starts a hub and has it make a
// cluster at the newer version (create → Healthy), scale it up and back,
// and make clusters at the older version with one and with three
// control-plane members, each with a Deployment under a
// PodDisruptionBudget, and upgrade them while GETs go to their apiservers
// ten times a second. It prints numbers and asserts nothing.
func Lifecycle(ctx context.Context, out, progress io.Writer, o LifecycleOptions) error {
	tmp, err := os.MkdirTemp("", "flotilla-bench-lifecycle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	quietLogs()
	logf := progressLog(progress)
	if _, err := kubebin.Binary(ctx, lifecycleOlder, logf); err != nil {
		return err
	}
	lf, err := startLocal(tmp, 0, 0)
	if err != nil {
		return err
	}
	defer lf.stop()
	b := &lifecycleBench{cl: lf.cl, clusters: &local.Provider{Root: filepath.Join(tmp, "hub", "clusters")}, logf: logf}
	defer b.clusters.StopAll()
	var res lifecycleResult
	res.nodes, res.scaleTo = o.Nodes, o.ScaleTo

	logf("create fresh at %s with %d nodes", lifecycleNewer, o.Nodes)
	if res.create, err = b.create(ctx, "fresh", lifecycleNewer, o.Nodes, 1); err != nil {
		return err
	}
	if res.idle[1], err = b.idleMemory("fresh"); err != nil {
		return err
	}
	logf("scale fresh to %d and back", o.ScaleTo)
	if res.scaleUp, err = b.change(ctx, "fresh", func(l *fv1.ClusterLifecycle) { l.NodePools[0].Replicas = int32(o.ScaleTo) }); err != nil {
		return err
	}
	if res.scaleDown, err = b.change(ctx, "fresh", func(l *fv1.ClusterLifecycle) { l.NodePools[0].Replicas = int32(o.Nodes) }); err != nil {
		return err
	}
	if res.delete, err = b.delete(ctx, "fresh"); err != nil {
		return err
	}
	for i, members := range []int{1, 3} {
		name := fmt.Sprintf("upgrade-%d", members)
		logf("create %s at %s with %d control-plane members", name, lifecycleOlder, members)
		if _, err := b.create(ctx, name, lifecycleOlder, o.Nodes, members); err != nil {
			return err
		}
		if members == 1 {
			if res.idle[0], err = b.idleMemory(name); err != nil {
				return err
			}
		}
		if res.upgrade[i], err = b.upgrade(ctx, name); err != nil {
			return err
		}
		if _, err := b.delete(ctx, name); err != nil {
			return err
		}
	}
	printLifecycle(out, &res)
	return nil
}

type lifecycleBench struct {
	cl       client.Client
	clusters *local.Provider
	logf     func(string, ...any)
}

// create makes a cluster and times it to Healthy on the hub.
func (b *lifecycleBench) create(ctx context.Context, name, version string, nodes, members int) (time.Duration, error) {
	start := time.Now()
	c := &fv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fv1.ClusterSpec{Lifecycle: &fv1.ClusterLifecycle{
			Provider: fv1.ProviderLocal, Version: version, ControlPlane: fv1.ControlPlane{Replicas: int32(members)},
			NodePools: []fv1.NodePool{{Name: "workers", Replicas: int32(nodes), CPU: resource.MustParse("4"), Memory: resource.MustParse("16Gi")}},
		}},
	}
	if err := b.cl.Create(ctx, c); err != nil {
		return 0, err
	}
	err := b.until(ctx, name, func(c *fv1.Cluster) bool { return done(c) && c.Status.Health == fv1.HealthHealthy })
	return time.Since(start), err
}

// change edits a cluster's lifecycle and times it to done.
func (b *lifecycleBench) change(ctx context.Context, name string, edit func(*fv1.ClusterLifecycle)) (time.Duration, error) {
	var c fv1.Cluster
	if err := b.cl.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
		return 0, err
	}
	edit(c.Spec.Lifecycle)
	start := time.Now()
	if err := b.cl.Update(ctx, &c); err != nil {
		return 0, err
	}
	gen := c.Generation // the update's
	err := b.until(ctx, name, func(c *fv1.Cluster) bool { return c.Generation >= gen && done(c) })
	return time.Since(start), err
}

// upgradeResult is one upgrade: its time, and the GETs during it.
type upgradeResult struct {
	took              time.Duration
	ok, gets, retried int
	firstFailure      string
}

// upgrade deploys web (6 replicas, maxUnavailable 1) and upgrades the
// cluster to the newer version under GETs at 10/s.
func (b *lifecycleBench) upgrade(ctx context.Context, name string) (upgradeResult, error) {
	var r upgradeResult
	cfg, err := clientcmd.RESTConfigFromKubeConfig(mustKubeconfig(b.clusters, name))
	if err != nil {
		return r, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return r, err
	}
	if err := DeployWeb(ctx, cs, 6); err != nil {
		return r, err
	}
	probe, err := ProbeGETs(cfg, 10)
	if err != nil {
		return r, err
	}
	b.logf("upgrade %s to %s", name, lifecycleNewer)
	r.took, err = b.change(ctx, name, func(l *fv1.ClusterLifecycle) { l.Version = lifecycleNewer })
	r.ok, r.gets, r.retried, r.firstFailure = probe.Stop()
	return r, err
}

func mustKubeconfig(p *local.Provider, name string) []byte {
	b, _ := p.Kubeconfig(name)
	return b
}

// delete deletes a cluster and times it until it is gone from the hub.
func (b *lifecycleBench) delete(ctx context.Context, name string) (time.Duration, error) {
	start := time.Now()
	if err := b.cl.Delete(ctx, &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return 0, err
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(b.cl.Get(ctx, client.ObjectKey{Name: name}, &fv1.Cluster{})), nil
	})
	return time.Since(start), err
}

// idleMemory is the memory of a cluster's whole process tree (supervisor,
// etcd, apiservers, controllers, agent) after 10 s idle.
func (b *lifecycleBench) idleMemory(name string) (procs.Memory, error) {
	time.Sleep(10 * time.Second)
	pid, held := datadir.Holder(b.clusters.Dir(name))
	if !held {
		return procs.Memory{}, fmt.Errorf("cluster %s has no supervisor", name)
	}
	return procs.TreeMemory(pid)
}

func (b *lifecycleBench) until(ctx context.Context, name string, cond func(*fv1.Cluster) bool) error {
	var last fv1.Cluster
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := b.cl.Get(ctx, client.ObjectKey{Name: name}, &last); err != nil {
			return false, nil
		}
		if st := last.Status.Lifecycle; st != nil && st.Phase == fv1.LifecycleFailed {
			return false, fmt.Errorf("cluster %s failed: %s", name, meta.FindStatusCondition(st.Conditions, fv1.ConditionReady).Message)
		}
		return cond(&last), nil
	})
	if err != nil && last.Status.Lifecycle != nil {
		err = fmt.Errorf("%w (last: %s %s)", err, last.Status.Lifecycle.Phase, last.Status.Lifecycle.Progress)
	}
	return err
}

// done says whether a made cluster runs as its current spec says.
func done(c *fv1.Cluster) bool {
	st := c.Status.Lifecycle
	return st != nil && st.ObservedGeneration == c.Generation && st.Phase == fv1.LifecycleReady &&
		meta.IsStatusConditionTrue(st.Conditions, fv1.ConditionReady)
}

// DeployWeb deploys web in default: replicas pods of app=web under a
// PodDisruptionBudget that lets one be unavailable at a time, and waits
// until they are available.
func DeployWeb(ctx context.Context, cs kubernetes.Interface, replicas int32) error {
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == replicas, nil
	})
}
