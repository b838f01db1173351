// Package tracker is the hub's side of the heartbeat protocol: it serves
// agents' streams and writes what they report into Cluster status. It is
// apart from package heartbeat so that agents, which import that, link none
// of the hub's client machinery.
package tracker

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// Tracker keeps the last observation of every cluster and writes Cluster
// status when it changes. It reads Clusters from the manager's cache.
type Tracker struct {
	Client client.Client
	// Changes tells agents when to fetch what the hub holds for them.
	Changes *heartbeat.Changes

	mu      sync.Mutex
	obs     map[string]heartbeat.Observation
	written map[string]time.Time
	// disconnected marks clusters whose Disconnected status is written.
	disconnected map[string]bool
	started      time.Time
}

// New returns a Tracker that reads and writes through c.
func New(c client.Client) *Tracker {
	return &Tracker{Client: c, Changes: heartbeat.NewChanges(), obs: map[string]heartbeat.Observation{}, written: map[string]time.Time{}, disconnected: map[string]bool{}, started: time.Now()}
}

// Observe records a report from cluster's agent and writes its status at once
// if it changed, so a new cluster turns Healthy on its first report.
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
	if r.Detached {
		next, patch := detached(&c)
		return t.store(ctx, next, patch), nil
	}
	if c.DeletionTimestamp != nil {
		return heartbeat.Response{Detach: true}, nil
	}
	var resp heartbeat.Response
	if r.Policies != nil {
		obj, patch := policies(cluster, r.Policies)
		resp = t.store(ctx, obj, patch)
		r.Policies = nil // kept in the Cluster, not twice in memory
	}
	t.mu.Lock()
	t.obs[cluster] = heartbeat.Observation{Seen: time.Now(), Report: &r}
	delete(t.disconnected, cluster)
	t.mu.Unlock()
	// The stream sets the reply's change token as it writes it.
	return resp, t.sync(ctx, &c)
}

// store writes what an agent reports beyond its health. A failure is the
// reply's Retry, not the stream's end: the report itself is taken.
func (t *Tracker) store(ctx context.Context, c *fv1.Cluster, patch client.Patch) heartbeat.Response {
	if err := t.Client.Status().Patch(ctx, c, patch); err != nil {
		log.FromContext(ctx).Error(err, "storing an agent's report", "cluster", c.Name)
		return heartbeat.Response{Retry: err.Error()}
	}
	return heartbeat.Response{}
}

// policies replaces a cluster's policy status with p. Every field is named:
// a merge patch leaves out what is zero, which would keep the old value.
func policies(cluster string, p *fv1.ClusterPolicyStatus) (*fv1.Cluster, client.Patch) {
	raw, _ := json.Marshal(map[string]any{"status": map[string]any{"policies": map[string]any{
		"synced": p.Synced, "objects": p.Objects, "violations": p.Violations, "insights": p.Insights, "lastChangeTime": metav1.Now(),
	}}})
	return &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}, client.RawPatch(types.MergePatchType, raw)
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
	for _, c := range list.Items {
		if meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionRegistered) {
			if _, ok := t.obs[c.Name]; !ok {
				// Not heard from since this hub started: count from the start.
				t.obs[c.Name] = heartbeat.Observation{Seen: t.started}
			}
		}
	}
	t.mu.Unlock()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, name := range t.overdue(time.Now()) {
			var c fv1.Cluster
			err := t.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
			if apierrors.IsNotFound(err) || err == nil && c.DeletionTimestamp != nil {
				t.forget(name)
				t.Changes.Forget(name)
				continue
			}
			if err == nil {
				err = t.sync(ctx, &c)
			}
			if err != nil && !apierrors.IsConflict(err) {
				log.FromContext(ctx).Error(err, "writing cluster health", "cluster", name)
			}
		}
	}
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
}

// sync writes c's status if the observation changes it or it is due for
// refresh. c may be the cache's own object: it is only read.
func (t *Tracker) sync(ctx context.Context, c *fv1.Cluster) error {
	t.mu.Lock()
	o, ok := t.obs[c.Name]
	if !ok {
		// Not heard from since this hub started: count from the start.
		o = heartbeat.Observation{Seen: t.started}
		t.obs[c.Name] = o
	}
	last := t.written[c.Name]
	t.mu.Unlock()

	now := time.Now()
	next := heartbeat.Status(now, o, c.Status)
	if equality.Semantic.DeepEqual(next, c.Status) && (o.Report == nil || now.Sub(last) < heartbeat.RefreshEvery) {
		if next.Health == fv1.HealthDisconnected {
			t.mu.Lock()
			t.disconnected[c.Name] = true
			t.mu.Unlock()
		}
		return nil
	}
	if o.Report != nil {
		seen := metav1.NewTime(o.Seen)
		next.LastHeartbeatTime = &seen
	}
	before := c
	c = c.DeepCopy()
	c.Status = next
	if err := t.Client.Status().Patch(ctx, c, client.MergeFrom(before)); err != nil {
		return err
	}
	t.mu.Lock()
	t.written[c.Name] = now
	if next.Health == fv1.HealthDisconnected {
		t.disconnected[c.Name] = true
	}
	t.mu.Unlock()
	return nil
}
