// Package tracker is the hub's side of the heartbeat protocol: it serves
// agents' streams and writes what they report into Cluster status. It is
// apart from package heartbeat so that agents, which import that, link none
// of the hub's client machinery.
package tracker

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/tunnel"
)

// Tracker keeps the last observation of every cluster and writes Cluster
// status when it changes. It reads Clusters from the manager's cache.
//
// Health is written by a few workers from a queue, not by the streams: a
// stream's reply then never waits on the apiserver, and a slow apiserver
// sees at most that many writes at once, each the latest for its cluster.
// Written from the streams, 7000 clusters once put thousands of writes in
// flight, and agents whose replies timed out reopened their streams and
// wrote again.
type Tracker struct {
	Client client.Client
	// Changes tells agents when to fetch what the hub holds for them.
	Changes *heartbeat.Changes
	// Tunnels takes the tunnels agents open when the hub asks; nil
	// refuses every tunnel.
	Tunnels *tunnel.Hub
	// Data, if set, answers agents' requests under heartbeat.DataPrefix,
	// once the tracker has verified who is asking: the request's context
	// names the cluster (ClusterOf).
	Data http.Handler
	// Events, if set, records health transitions on Clusters and policy
	// sync transitions on Policies.
	Events record.EventRecorder

	queue workqueue.TypedRateLimitingInterface[string] // clusters whose health to write

	mu      sync.Mutex
	obs     map[string]heartbeat.Observation
	written map[string]time.Time
	// disconnected marks clusters whose Disconnected status is written.
	disconnected map[string]bool
	// attach is the Cluster UID each observation is of: a cluster detached
	// and attached again under its name starts afresh.
	attach map[string]types.UID
	// policies is the last policy report of each cluster, stored or refused.
	policies map[string]lastPolicies
	// refused is why the hub's API last refused a cluster's health, told
	// to its agent in each reply until a write succeeds. The write is not
	// retried from the queue: the next report queues it again, and the
	// write slots space such attempts like any other write.
	refused map[string]string
	started time.Time
	// LeaderElection is set when hubs may share this hub's storage: then
	// only the leader (the hub that runs Start) serves agents' streams,
	// and the others send agents on. A lone hub serves them at once.
	LeaderElection bool
	leading        atomic.Bool

	slots   writeSlots
	streams streamLimits
	used    usedCSRs
}

// New returns a Tracker that reads and writes through c.
func New(c client.Client) *Tracker {
	// Failed writes (mostly conflicts, while the cache catches up) back
	// off per cluster only: the default's shared budget of 10 retries a
	// second held a registering fleet's health writes back.
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "cluster-health"})
	return &Tracker{Client: c, Changes: heartbeat.NewChanges(), queue: queue, obs: map[string]heartbeat.Observation{}, written: map[string]time.Time{}, disconnected: map[string]bool{}, attach: map[string]types.UID{},
		policies: map[string]lastPolicies{}, refused: map[string]string{}, started: time.Now(),
		slots: writeSlots{next: map[string]time.Time{}}, streams: streamLimits{opens: map[string]*rate.Limiter{}, reports: map[string]*rate.Limiter{}},
		used: newUsedCSRs()}
}

// Observe records a report from cluster's agent and queues its status for
// writing if it changed, so a new cluster turns Healthy on its first report.
func (t *Tracker) Observe(ctx context.Context, cluster string, r heartbeat.Report) (heartbeat.Response, error) {
	// Read in place, not copied: this runs for every heartbeat, most change
	// nothing, and sync copies before it writes.
	var c fv1.Cluster
	if err := t.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return heartbeat.Response{}, heartbeat.ErrNotAttached
		}
		return heartbeat.Response{}, err
	}
	if r.Detached && c.DeletionTimestamp == nil {
		// Only a detach the hub asked for may be reported done: taken
		// early, a later detach would skip the agent's cleanup.
		return heartbeat.Response{Error: "cluster " + cluster + " is not being detached; the hub asks its agent to clean up when it is"}, nil
	}
	if r.Detached {
		next, patch := detached(&c)
		if err := t.Client.Status().Patch(ctx, next, patch); err != nil {
			log.FromContext(ctx).Error(err, "storing an agent's detach", "cluster", c.Name)
			return heartbeat.Response{Retry: err.Error()}, nil
		}
		return heartbeat.Response{}, nil
	}
	if c.DeletionTimestamp != nil {
		return heartbeat.Response{Detach: true}, nil
	}
	var resp heartbeat.Response
	if r.Policies != nil {
		resp = t.storePolicies(ctx, &c, r.Policies)
		r.Policies = nil // kept in the Cluster, not twice in memory
	}
	t.mu.Lock()
	heartbeatAge(t.obs[cluster])
	t.obs[cluster] = heartbeat.Observation{Seen: time.Now(), Report: &r}
	delete(t.disconnected, cluster)
	t.attach[cluster] = c.UID
	t.mu.Unlock()
	if _, write := t.plan(&c, time.Now()); write {
		// The worker waits for the cluster's write slot: reports that
		// come faster are coalesced into one write of the latest.
		t.queue.Add(cluster)
	}
	t.mu.Lock()
	if why := t.refused[cluster]; why != "" && resp.Refused == "" {
		resp.Refused = "the hub's API refuses the cluster's health as last reported: " + why
	}
	t.mu.Unlock()
	// The stream sets the reply's change token as it writes it.
	return resp, nil
}

// policies replaces a cluster's policy status with p. Every field is named:
// a merge patch leaves out what is zero, which would keep the old value.
// A merge patch merges maps key by key, so the audited map nulls the keys
// c (as cached) has and p no longer does: a policy deleted, or out of audit
// mode, must not stay "reported".
func policies(c *fv1.Cluster, p *fv1.ClusterPolicyStatus) (*fv1.Cluster, client.Patch) {
	var audited map[string]any
	if c.Status.Policies != nil {
		for name := range c.Status.Policies.Audited {
			if _, ok := p.Audited[name]; !ok {
				if audited == nil {
					audited = map[string]any{}
				}
				audited[name] = nil
			}
		}
	}
	for name, gen := range p.Audited {
		if audited == nil {
			audited = map[string]any{}
		}
		audited[name] = gen
	}
	raw, _ := json.Marshal(map[string]any{"status": map[string]any{"policies": map[string]any{
		"synced": p.Synced, "objects": p.Objects, "violations": p.Violations, "insights": p.Insights, "audited": audited, "lastChangeTime": metav1.Now(),
	}}})
	return &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: c.Name}}, client.RawPatch(types.MergePatchType, raw)
}

// detached marks c as cleaned up by its agent, which lets the Cluster
// controller finish the removal. The lock keeps a stale c from undoing
// another condition; a conflict is retried with the next report.
func detached(c *fv1.Cluster) (*fv1.Cluster, client.Patch) {
	next := c.DeepCopy()
	meta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{
		Type: fv1.ClusterConditionDetached, Status: metav1.ConditionTrue, Reason: "AgentCleanedUp",
		Message: "the agent removed what Flotilla created in the cluster",
	})
	return next, client.MergeFromWithOptions(c, client.MergeFromWithOptimisticLock{})
}

// Start re-evaluates, each second, only the clusters whose heartbeats are
// overdue, which is how silent clusters become Disconnected without walking
// the whole fleet every second. It is a manager Runnable.
func (t *Tracker) Start(ctx context.Context) error {
	var list fv1.ClusterList
	if err := t.Client.List(ctx, &list); err != nil {
		return err
	}
	t.mu.Lock()
	// Clusters not heard from yet are counted from when this hub took the
	// lead, not from when it started on standby: their agents get the
	// usual missed beats to find it.
	t.started = time.Now()
	for _, c := range list.Items {
		if meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionRegistered) {
			if _, ok := t.obs[c.Name]; !ok {
				// Not heard from since this hub started: count from the start.
				t.obs[c.Name] = heartbeat.Observation{Seen: t.started}
				t.attach[c.Name] = c.UID
			}
			if hb := c.Status.LastHeartbeatTime; hb != nil && t.written[c.Name].IsZero() {
				// The stored heartbeat time is as old as the last write:
				// refreshes go on where the last hub left them. Counted
				// from zero, every cluster's first report to a restarted
				// hub was written at once, 10,000 writes in a minute.
				t.written[c.Name] = hb.Time
			}
		}
	}
	t.mu.Unlock()

	t.leading.Store(true)
	defer t.leading.Store(false)
	defer t.queue.ShutDown()
	defer t.used.queue.ShutDown()
	t.cleanCSRs(ctx)
	for range healthWriters {
		go t.work(ctx)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, name := range t.overdue(time.Now()) {
			t.queue.Add(name)
		}
	}
}

// healthWriters bounds the health writes in flight: at a few milliseconds
// each, they keep up with thousands of changes a second.
const healthWriters = 8

// work writes the health of queued clusters until the queue shuts down.
func (t *Tracker) work(ctx context.Context) {
	for {
		name, shutdown := t.queue.Get()
		if shutdown {
			return
		}
		if err := t.write(ctx, name); permanent(err) {
			// What the agent reported cannot be stored as it is: retrying
			// the same write would fail forever. Its agent is told in the
			// next reply; a report that changes it queues a new write.
			log.FromContext(ctx).Info("the hub's API refuses a cluster's health as its agent reported it", "cluster", name, "reason", err.Error())
			t.mu.Lock()
			t.refused[name] = err.Error()
			t.mu.Unlock()
			t.queue.Forget(name)
		} else if err != nil {
			if !apierrors.IsConflict(err) { // the cache had not seen another writer's change yet
				log.FromContext(ctx).Error(err, "writing cluster health", "cluster", name)
			}
			t.queue.AddRateLimited(name)
		} else {
			t.queue.Forget(name)
		}
		t.queue.Done(name)
	}
}

// write brings name's status up to its last observation.
func (t *Tracker) write(ctx context.Context, name string) error {
	var c fv1.Cluster
	err := t.Client.Get(ctx, client.ObjectKey{Name: name}, &c, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) || err == nil && (c.DeletionTimestamp != nil || t.ofOtherAttach(&c)) {
		t.forget(name)
		t.Changes.Forget(name)
		return nil
	}
	if err != nil {
		return err
	}
	return t.sync(ctx, &c)
}

// overdue lists clusters that missed their heartbeats and are not yet
// reported Disconnected.
func (t *Tracker) overdue(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for name, o := range t.obs {
		if now.Sub(o.Seen) > heartbeat.MissedBeats*o.Interval() && !t.disconnected[name] {
			out = append(out, name)
		}
	}
	return out
}

func (t *Tracker) forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.obs, name)
	delete(t.written, name)
	delete(t.disconnected, name)
	delete(t.attach, name)
	delete(t.policies, name)
	delete(t.refused, name)
	t.slots.forget(name)
	t.streams.forget(name)
}

// plan computes c's status from its observation and says whether it needs
// writing: it changed, or is due for refresh. c is only read.
func (t *Tracker) plan(c *fv1.Cluster, now time.Time) (fv1.ClusterStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.obs[c.Name]
	if !ok {
		// Not heard from since this hub started: count from the start.
		o = heartbeat.Observation{Seen: t.started}
		t.obs[c.Name] = o
	}
	next := heartbeat.Status(now, o, c.Status)
	if equality.Semantic.DeepEqual(next, c.Status) && (o.Report == nil || now.Sub(t.written[c.Name]) < heartbeat.RefreshEvery) {
		delete(t.refused, c.Name) // the status says what was observed: nothing is refused
		if next.Health == fv1.HealthDisconnected {
			t.disconnected[c.Name] = true
		}
		return next, false
	}
	if o.Report != nil {
		seen := metav1.NewTime(o.Seen)
		next.LastHeartbeatTime = &seen
	}
	return next, true
}

// sync writes c's status if plan says so. c may be the cache's own object:
// it is only read.
func (t *Tracker) sync(ctx context.Context, c *fv1.Cluster) error {
	now := time.Now()
	next, write := t.plan(c, now)
	if !write {
		return nil
	}
	if wait, ok := t.slots.reserve(c.Name, now, 0); !ok {
		// Written less than a gap ago: write the latest once it passes.
		t.queue.AddAfter(c.Name, wait)
		return nil
	}
	before := c
	c = c.DeepCopy()
	c.Status = next
	// On the Cluster as cached: conditions are one list, which a patch
	// laid over a stale copy would replace, dropping a condition another
	// writer (the certificate reviewer's Registered) set meanwhile. A
	// conflict is queued again and written from the newer copy.
	if err := t.Client.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	t.healthWritten(before, next)
	t.mu.Lock()
	t.written[c.Name] = now
	delete(t.refused, c.Name)
	if next.Health == fv1.HealthDisconnected {
		t.disconnected[c.Name] = true
	}
	t.mu.Unlock()
	return nil
}

type clusterKey struct{}

// ClusterOf is the cluster whose agent made a request Data serves.
func ClusterOf(ctx context.Context) string {
	c, _ := ctx.Value(clusterKey{}).(string)
	return c
}
