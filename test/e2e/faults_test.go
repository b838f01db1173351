package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/testenv"
)

// TestPolicyChangesSurviveFaults makes at least 1,000 policy changes
// (creates, edits and deletes of organization-wide access policies, about
// ten a second) over three real member clusters while, one after the other,
// it kills with SIGKILL and starts again the hub, one cluster's agent and
// another cluster's local control plane (its apiserver and etcd), and cuts
// the network between the hub and the agents for 60 s. The agents reach the
// hub through TCP proxies, which the hub publishes as its agent endpoint
// (--agent-advertise-address) as it would a load balancer's, and which the
// cut closes: every cluster turns Disconnected within 3 heartbeats of the
// cut and is Healthy within 2 after the heal. Then every member must hold
// exactly the final desired state: no policy lost, nothing stale, and no
// write a watcher of the members can see that changed nothing or repeats a
// create.
func TestPolicyChangesSurviveFaults(t *testing.T) {
	r := runFaults(t, 3, 1000)
	for _, c := range r.clusters {
		if c.noop > 0 || c.recreated > 0 {
			t.Errorf("%s: %d writes that changed nothing and %d creates beyond its policy's, seen by a watcher", c.name, c.noop, c.recreated)
		}
	}
}

// BenchmarkPolicyChangesUnderFaults is the fault suite at a larger scale:
// FLOTILLA_FAULT_CLUSTERS real local clusters (default 10) and 300 changes
// per cluster, with the same faults. Run it once:
//
//	go test ./test/e2e -run '^$' -bench PolicyChangesUnderFaults -benchtime 1x
//
// It reports the changes made, what the members lost, held stale or wrote
// for nothing, and how long the fleet took to converge and to see the
// network cut and its heal.
func BenchmarkPolicyChangesUnderFaults(b *testing.B) {
	n := 10
	if v, err := strconv.Atoi(os.Getenv("FLOTILLA_FAULT_CLUSTERS")); err == nil && v >= 3 {
		n = v
	}
	for range b.N {
		r := runFaults(b, n, 300*n)
		var lost, stale, noop, recreated int
		for _, c := range r.clusters {
			lost, stale, noop, recreated = lost+c.lost, stale+c.stale, noop+c.noop, recreated+c.recreated
		}
		b.ReportMetric(float64(n), "clusters")
		b.ReportMetric(float64(r.changes), "changes")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(stale), "stale")
		b.ReportMetric(float64(noop+recreated), "duplicated")
		b.ReportMetric(r.converged.Seconds(), "converge-s")
		b.ReportMetric(r.disconnected.Seconds(), "disconnected-s")
		b.ReportMetric(r.healed.Seconds(), "healed-s")
	}
}

// faultReport is what one run of the fault suite saw.
type faultReport struct {
	changes              int
	converged            time.Duration // the last change and fault → every member holds the final state
	disconnected, healed time.Duration // the slowest cluster to turn Disconnected after the cut, and Healthy after the heal
	clusters             []clusterFaults
}

type clusterFaults struct {
	name                         string
	lost, stale, noop, recreated int
}

// runFaults makes at least changes policy changes over n real local
// clusters while the faults happen, one after the other, and checks every
// member against the final desired state; it fails tb for what must not
// happen (a loss, a stale object, a cluster that stays unhealthy).
func runFaults(tb testing.TB, n, changes int) faultReport {
	const (
		pace     = 50 * time.Millisecond // between changes: the stream outlasts the faults
		pool     = 20                    // policy names the changes draw from
		interval = 2 * time.Second
		cut      = 60 * time.Second
	)
	proxies := newHubProxies(tb)
	env := testenv.New(tb, testenv.Options{Clusters: n, Nodes: 1, HubArgs: proxies.hubArgs()})
	proxies.route(tb, env)
	ctx := context.Background()
	agents := make([]*testenv.Process, len(env.Clusters))
	watchers := make([]*bindingWatcher, len(env.Clusters))
	for i, c := range env.Clusters {
		agents[i] = startAgent(tb, env, c, proxies.apiserver.Addr, "--heartbeat-interval", interval.String())
	}
	for i, c := range env.Clusters {
		until(tb, time.Minute, c.Name+" Healthy", func(cl *fv1.Cluster) bool { return cl.Status.Health == fv1.HealthHealthy }, env, c.Name)
		watchers[i] = watchBindings(tb, c)
	}

	// Captured once: the hub's Process builds new clients when it starts
	// again, at the same address, which these keep using.
	hub := env.Hub.Client
	restart := func(what string, p *testenv.Process) {
		killed := time.Now()
		p.Kill()
		if err := p.Run(); err != nil {
			tb.Errorf("starting %s again: %v", what, err)
			return
		}
		tb.Logf("%s killed (SIGKILL) and ready again in %.1fs", what, time.Since(killed).Seconds())
	}
	var r faultReport
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		for _, step := range []func(){
			func() { restart("the hub", env.Hub) },
			func() { restart("cluster-2's agent", agents[1]) },
			func() { restart("cluster-3's control plane", env.Clusters[2]) },
			func() { r.disconnected, r.healed = proxies.cutAndHeal(tb, env, cut, interval) },
		} {
			time.Sleep(5 * time.Second)
			step()
		}
	}()
	m := newMutator(rand.New(rand.NewPCG(1, 2)), pool)
	start := time.Now()
	// The stream goes on until the faults are over.
	for n := 0; n < changes || !closed(faultsDone); n++ {
		m.change(tb, hub)
		time.Sleep(pace)
	}
	last := time.Now()
	r.changes = m.creates + m.edits + m.deletes
	tb.Logf("%d changes in %.1fs: %d creates, %d edits, %d deletes; %d API calls failed and were retried", r.changes, last.Sub(start).Seconds(), m.creates, m.edits, m.deletes, m.retries)

	want := m.desired()
	for i, c := range env.Clusters {
		cf := clusterFaults{name: c.Name}
		var lost, stale []string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			lost, stale = watchers[i].diff(want)
			return len(lost) == 0 && len(stale) == 0, nil
		})
		cf.lost, cf.stale = len(lost), len(stale)
		cf.noop, cf.recreated = watchers[i].duplicates(m.createsOf)
		r.clusters = append(r.clusters, cf)
		if err != nil {
			tb.Errorf("%s after the last change: lost %v, stale %v", c.Name, lost, stale)
			continue
		}
		r.converged = max(r.converged, time.Since(last))
		tb.Logf("%s: converged %.1fs after the last change and fault; %d binding writes seen, %d changed nothing, %d creates beyond the policy's", c.Name, time.Since(last).Seconds(), watchers[i].writes(), cf.noop, cf.recreated)
		until(tb, time.Minute, c.Name+" Healthy", func(cl *fv1.Cluster) bool { return cl.Status.Health == fv1.HealthHealthy }, env, c.Name)
	}
	return r
}

// startAgent attaches c and runs its agent with args added, stopped when the
// test ends. The agent reaches the hub's apiserver at hubAddr, if set.
func startAgent(t testing.TB, env *testenv.Env, c *testenv.Process, hubAddr string, args ...string) *testenv.Process {
	t.Helper()
	boot, err := attach.Attach(context.Background(), env.Hub.Client, env.Hub.Config, attach.Options{Name: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	if hubAddr != "" {
		kc, err := clientcmd.Load(boot)
		if err != nil {
			t.Fatal(err)
		}
		for _, kcc := range kc.Clusters {
			kcc.Server = "https://" + hubAddr
		}
		if boot, err = clientcmd.Write(*kc); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(env.Dir, "agent-"+c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(dir, "bootstrap.kubeconfig")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	a := testenv.NewProcess("agent-"+c.Name, dir, "", append([]string{"agent", "--cluster-kubeconfig", c.Kubeconfig,
		"--data-dir", dir, "--bootstrap-kubeconfig", bootPath}, args...)...)
	if err := a.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// mutator makes random policy changes and remembers what they add up to.
type mutator struct {
	rnd                              *rand.Rand
	names                            []string
	subject                          map[string]string // policy → its user, while it exists
	createsOf                        map[string]int    // binding → creates of its policy
	creates, edits, deletes, retries int
	seq                              int
}

func newMutator(rnd *rand.Rand, pool int) *mutator {
	m := &mutator{rnd: rnd, subject: map[string]string{}, createsOf: map[string]int{}}
	for i := range pool {
		m.names = append(m.names, fmt.Sprintf("fault-%02d", i))
	}
	return m
}

// change creates, edits or deletes one policy, retrying until the hub takes
// it: a change is made once the hub's API has accepted it.
func (m *mutator) change(t testing.TB, hub client.Client) {
	t.Helper()
	name := m.names[m.rnd.IntN(len(m.names))]
	m.seq++
	user := fmt.Sprintf("user-%d", m.seq)
	_, exists := m.subject[name]
	del := exists && m.rnd.IntN(2) == 0
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := m.apply(ctx, hub, name, user, del)
		if err != nil {
			m.retries++
		}
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("change %d (%s) not accepted within 3 minutes", m.seq, name)
	}
	switch {
	case del:
		delete(m.subject, name)
		m.deletes++
	case exists:
		m.subject[name] = user
		m.edits++
	default:
		m.subject[name] = user
		m.createsOf[policy.ObjectName(name)]++
		m.creates++
	}
}

// apply makes policy name hold user, or deletes it. A call whose answer was
// lost (the hub killed mid-request) is retried safely: a create that
// exists edits, a delete of nothing is done.
func (m *mutator) apply(ctx context.Context, cl client.Client, name, user string, del bool) error {
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if del {
		return client.IgnoreNotFound(cl.Delete(ctx, p))
	}
	err := cl.Get(ctx, client.ObjectKeyFromObject(p), p)
	if apierrors.IsNotFound(err) {
		p.Spec = fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
			Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: user}}}}
		return cl.Create(ctx, p)
	}
	if err != nil {
		return err
	}
	p.Spec.Access.Subjects = []fv1.Subject{{Kind: "User", Name: user}}
	return cl.Update(ctx, p)
}

// desired is each binding the members must hold, and its user.
func (m *mutator) desired() map[string]string {
	out := map[string]string{}
	for name, user := range m.subject {
		out[policy.ObjectName(name)] = user
	}
	return out
}

// bindingWatcher follows one member's Flotilla-owned ClusterRoleBindings
// through restarts of its apiserver, counting every write it sees.
type bindingWatcher struct {
	mu       sync.Mutex
	current  map[string]*rbacv1.ClusterRoleBinding
	added    map[string]int
	modified int
	noop     int
}

func watchBindings(t testing.TB, c *testenv.Process) *bindingWatcher {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	sel := metav1.ListOptions{LabelSelector: policy.OwnedLabel + "=true"}
	list, err := cs.RbacV1().ClusterRoleBindings().List(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	w := &bindingWatcher{current: map[string]*rbacv1.ClusterRoleBinding{}, added: map[string]int{}}
	for i := range list.Items {
		w.current[list.Items[i].Name] = &list.Items[i]
	}
	rw, err := watchtools.NewRetryWatcherWithContext(context.Background(), list.ResourceVersion, &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel.LabelSelector
			return cs.RbacV1().ClusterRoleBindings().Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rw.Stop)
	go func() {
		for ev := range rw.ResultChan() {
			b, ok := ev.Object.(*rbacv1.ClusterRoleBinding)
			if !ok {
				continue
			}
			w.mu.Lock()
			switch ev.Type {
			case watch.Added:
				w.added[b.Name]++
				w.current[b.Name] = b
			case watch.Modified:
				w.modified++
				if prev := w.current[b.Name]; prev != nil && slices.Equal(prev.Subjects, b.Subjects) && prev.RoleRef == b.RoleRef && equalLabels(prev.Labels, b.Labels) {
					w.noop++
				}
				w.current[b.Name] = b
			case watch.Deleted:
				delete(w.current, b.Name)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// diff compares what the member holds with want (binding → user).
func (w *bindingWatcher) diff(want map[string]string) (lost, stale []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, user := range want {
		b := w.current[name]
		if b == nil || len(b.Subjects) != 1 || b.Subjects[0].Name != user {
			lost = append(lost, name+"→"+user)
		}
	}
	for name := range w.current {
		if _, ok := want[name]; !ok {
			stale = append(stale, name)
		}
	}
	slices.Sort(lost)
	slices.Sort(stale)
	return lost, stale
}

// duplicates counts writes that changed nothing, and creates of a binding
// beyond the creates of its policy.
func (w *bindingWatcher) duplicates(createsOf map[string]int) (noop, recreated int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, n := range w.added {
		recreated += max(0, n-createsOf[name])
	}
	return w.noop, recreated
}

func (w *bindingWatcher) writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.modified
	for _, a := range w.added {
		n += a
	}
	return n
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
