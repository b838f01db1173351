package lifecycle

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/bench"
)

// setBudget sets how many of web's pods may be unavailable.
func setBudget(t *testing.T, cs kubernetes.Interface, maxUnavailable int) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"maxUnavailable":%d}}`, maxUnavailable)
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Patch(context.Background(), "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// budgetWatch follows web's pods and remembers the fewest that were ready
// (and not going) at any moment: a drain that respects the budget never
// takes them below 5.
type budgetWatch struct {
	mu     sync.Mutex
	fewest int
	stop   chan struct{}
}

func watchBudget(t *testing.T, cs kubernetes.Interface) *budgetWatch {
	t.Helper()
	w := &budgetWatch{fewest: 1 << 30, stop: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	inf := f.Core().V1().Pods().Informer()
	count := func(any) {
		n := 0
		for _, o := range inf.GetStore().List() {
			p := o.(*corev1.Pod)
			if p.Labels["app"] == "web" && p.DeletionTimestamp == nil && podReady(p) {
				n++
			}
		}
		w.mu.Lock()
		w.fewest = min(w.fewest, n)
		w.mu.Unlock()
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: count, UpdateFunc: func(_, o any) { count(o) }, DeleteFunc: count})
	f.Start(w.stop)
	f.WaitForCacheSync(w.stop)
	t.Cleanup(func() { close(w.stop) })
	return w
}

func (w *budgetWatch) min() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fewest
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// conditionLog remembers every Ready message the cluster's lifecycle had.
func conditionLog(t *testing.T, name string) func() []string {
	var mu sync.Mutex
	var seen []string
	stop := make(chan struct{})
	go func() {
		for {
			var c fv1.Cluster
			if env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &c) == nil && c.Status.Lifecycle != nil {
				if cond := meta.FindStatusCondition(c.Status.Lifecycle.Conditions, fv1.ConditionReady); cond != nil {
					mu.Lock()
					if !slices.Contains(seen, cond.Message) {
						seen = append(seen, cond.Message)
					}
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func anyContains(msgs []string, sub string) bool {
	return slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, sub) })
}

func nodes(t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range list.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if ready && !n.Spec.Unschedulable {
			out[n.Name] = n.Status.NodeInfo.KubeletVersion
		}
	}
	return out
}

// TestCreateUpgradeScaleDelete is a cluster's whole life: made at the older
// version with a Deployment under a PodDisruptionBudget, upgraded (with
// the hub killed in the middle of it), scaled up and down (a budget that
// blocks the drain holds it until relaxed), and deleted, leaving nothing.
func TestCreateUpgradeScaleDelete(t *testing.T) {
	ctx := context.Background()
	const name = "life"
	start := time.Now()
	mustFlotilla(t, "cluster", "create", name, "--version", older, "--nodes", "3", "--wait", "--timeout", "3m")
	c := cluster(t, name)
	if c.Status.Health != fv1.HealthHealthy || c.Status.KubernetesVersion != older || c.Status.Nodes.Total != 3 {
		t.Fatalf("made cluster: health %s, version %s, %d nodes", c.Status.Health, c.Status.KubernetesVersion, c.Status.Nodes.Total)
	}
	t.Logf("create → Healthy at %s in %s", older, time.Since(start).Round(100*time.Millisecond))
	if _, errOut, err := flotilla("cluster", "create", name, "--version", older); err == nil || !strings.Contains(errOut, "already exists") {
		t.Fatalf("a second create of %s: %v %s", name, err, errOut)
	}

	cs, _ := member(t, name)
	if err := bench.DeployWeb(ctx, cs, 6); err != nil {
		t.Fatal(err)
	}
	before := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before", Namespace: "default"}, Data: map[string]string{"made-at": older}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, before, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	budget := watchBudget(t, cs)
	messages := conditionLog(t, name)

	// Upgrade; once the control plane is done and the nodes are under way,
	// the hub is killed and started again: the upgrade resumes.
	mustFlotilla(t, "cluster", "upgrade", name, "--version", newer)
	waitFor(t, 2*time.Minute, "a node upgraded", func(context.Context) (bool, error) {
		st := cluster(t, name).Status.Lifecycle
		return st != nil && st.Phase == fv1.LifecycleUpgrading && strings.Contains(st.Progress, "nodes upgraded") && !strings.HasPrefix(st.Progress, "0/"), nil
	})
	env.Hub.Kill()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Minute, "upgrade done", func(context.Context) (bool, error) {
		c := cluster(t, name)
		st := c.Status.Lifecycle
		return st != nil && st.Phase == fv1.LifecycleReady && st.ObservedGeneration == c.Generation, nil
	})
	if n := processesOf(t, clusters.Dir(name), "localplane"); n != 1 {
		t.Errorf("%d supervisors of %s run after the hub's restart, want 1", n, name)
	}
	if n := processesOf(t, clusters.Dir(name), "kube-apiserver"); n != 1 {
		t.Errorf("%d apiservers of %s run after the hub's restart, want 1", n, name)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil || v.GitVersion != newer {
		t.Fatalf("apiserver version %v %v, want %s", v, err, newer)
	}
	for n, kv := range nodes(t, cs) {
		if kv != newer {
			t.Errorf("node %s runs %s after the upgrade", n, kv)
		}
	}
	if len(nodes(t, cs)) != 3 {
		t.Errorf("schedulable Ready nodes after the upgrade: %v", nodes(t, cs))
	}
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "before", metav1.GetOptions{})
	if err != nil || got.Data["made-at"] != older {
		t.Fatalf("object made before the upgrade: %v %v", got, err)
	}
	if m := budget.min(); m < 5 {
		t.Errorf("only %d web pods were ready at one point: the PodDisruptionBudget was broken", m)
	}
	if !anyContains(messages(), "disruption budget web") {
		t.Errorf("no drain waited on the budget named web; conditions seen: %q", messages())
	}
	if _, errOut, err := flotilla("cluster", "upgrade", name, "--version", older); err == nil || !strings.Contains(errOut, "cannot be downgraded") {
		t.Errorf("downgrade: %v %s", err, errOut)
	}

	// Scale up, then down past a budget that allows no disruption at all.
	mustFlotilla(t, "cluster", "scale", name, "--nodes", "5", "--wait", "--timeout", "2m")
	if n := len(nodes(t, cs)); n != 5 {
		t.Fatalf("%d nodes after scaling to 5", n)
	}
	// Spread web over the new nodes too (a restart reschedules every pod),
	// so that the nodes to go have pods to drain.
	restart := `{"spec":{"template":{"metadata":{"annotations":{"restarted":"` + time.Now().Format(time.RFC3339Nano) + `"}}}}}`
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "web", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "web restarted over 5 nodes", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		on := map[string]bool{}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				return false, nil
			}
			on[p.Spec.NodeName] = true
		}
		return len(pods.Items) == 6 && len(on) > 2, nil
	})
	setBudget(t, cs, 0) // no disruption at all
	mustFlotilla(t, "cluster", "scale", name, "--nodes", "2")
	waitFor(t, time.Minute, "scale-down blocked by web's budget", func(context.Context) (bool, error) {
		st := cluster(t, name).Status.Lifecycle
		cond := meta.FindStatusCondition(st.Conditions, fv1.ConditionReady)
		if cond != nil && strings.Contains(cond.Message, "disruption budget web") {
			return st.Phase == fv1.LifecycleScaling, nil
		}
		if st.Phase == fv1.LifecycleReady && st.ObservedGeneration == cluster(t, name).Generation {
			return false, fmt.Errorf("scaled down past web's budget; conditions seen: %q", messages())
		}
		return false, nil
	})
	time.Sleep(2 * time.Second)
	if st := cluster(t, name).Status.Lifecycle; st.Phase != fv1.LifecycleScaling {
		t.Fatalf("a drain blocked by a budget went on: phase %s", st.Phase)
	}
	setBudget(t, cs, 1)
	mustFlotilla(t, "cluster", "scale", name, "--nodes", "2", "--wait", "--timeout", "2m")
	left := nodes(t, cs)
	if len(left) != 2 {
		t.Fatalf("nodes after scaling to 2: %v", left)
	}
	waitFor(t, time.Minute, "web's pods Running on the nodes left", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if _, ok := left[p.Spec.NodeName]; ok && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running == 6, nil
	})
	if m := budget.min(); m < 5 {
		t.Errorf("only %d web pods were ready at one point while scaling down", m)
	}

	// Delete: nothing of it is left.
	dir := clusters.Dir(name)
	mustFlotilla(t, "cluster", "delete", name, "--wait", "--timeout", "2m")
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &fv1.Cluster{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster %s still on the hub: %v", name, err)
	}
	if n := processesOf(t, dir, ""); n != 0 {
		t.Errorf("%d processes of %s still run", n, name)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", dir, err)
	}
}
