package tracker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// maxPolicyWait bounds how long a policy report waits for its cluster's
// next write slot. Slots further off mean the cluster's agent sends
// reports far faster than an agent does: the reply asks it to retry
// rather than queue the stream's replies behind its writes.
const maxPolicyWait = 3 * time.Second

// writeSlots spaces the status writes the hub makes for one cluster's
// reports by heartbeat.MinWriteGap: whatever one identity sends, the hub
// writes its Cluster at most once a gap. Health is written from the queue,
// which holds each cluster once, so waiting coalesces every report of the
// gap into one write of the latest; a policy report is written from its
// stream, which waits for the slot (a stream takes one report at a time).
type writeSlots struct {
	mu   sync.Mutex
	next map[string]time.Time // the earliest time cluster may be written
}

// reserve takes cluster's next write slot if it is at most within of now,
// and says how long to wait for it; ok is false (and nothing is taken) if
// it is further off.
func (w *writeSlots) reserve(cluster string, now time.Time, within time.Duration) (wait time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.next[cluster]
	if at.Before(now) {
		at = now
	}
	if wait = at.Sub(now); wait > within {
		return wait, false
	}
	w.next[cluster] = at.Add(heartbeat.MinWriteGap)
	return wait, true
}

func (w *writeSlots) forget(cluster string) {
	w.mu.Lock()
	delete(w.next, cluster)
	w.mu.Unlock()
}

// lastPolicies is the last policy report the hub stored or was refused,
// for one attach of a cluster: the same report again is answered from
// memory, not written again. An agent sends a report only when it
// changes; one that repeats a refused report must not make the hub try it
// again each time.
type lastPolicies struct {
	attach  types.UID
	digest  [sha256.Size]byte
	refused string // why the hub's API refused it; "" if stored
}

// permanent says whether err is the hub's API refusing the object as it
// is (invalid, too large): trying again with the same content would fail
// the same way.
func permanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsBadRequest(err)
}

// storePolicies writes p into c's status in cluster's next write slot,
// unless it is the report last stored or refused. The reply says whether
// the hub took it (empty), why it will never take it (Refused), or why it
// could not now (Retry).
func (t *Tracker) storePolicies(ctx context.Context, c *fv1.Cluster, p *fv1.ClusterPolicyStatus) heartbeat.Response {
	raw, _ := json.Marshal(p)
	digest := sha256.Sum256(raw)
	t.mu.Lock()
	last, seen := t.policies[c.Name]
	t.mu.Unlock()
	if seen && last.attach == c.UID && last.digest == digest {
		if last.refused != "" {
			return heartbeat.Response{Refused: last.refused}
		}
		return heartbeat.Response{}
	}
	wait, ok := t.slots.reserve(c.Name, time.Now(), maxPolicyWait)
	if !ok {
		return heartbeat.Response{Retry: "cluster " + c.Name + " sends reports faster than the hub writes its status (once every " + heartbeat.MinWriteGap.String() + "); send the policy report again later"}
	}
	select {
	case <-ctx.Done():
		return heartbeat.Response{Retry: ctx.Err().Error()}
	case <-time.After(wait):
	}
	obj, patch := policies(c, p)
	var resp heartbeat.Response
	switch err := t.Client.Status().Patch(ctx, obj, patch); {
	case err != nil && permanent(err):
		// The agent's report, not the hub, is at fault: said once in
		// the log and in the reply, which the agent logs too.
		resp.Refused = "the hub's API refuses the policy report: " + err.Error()
		log.FromContext(ctx).Info("refused an agent's policy report", "cluster", c.Name, "reason", err.Error())
	case err != nil:
		log.FromContext(ctx).Error(err, "storing an agent's policy report", "cluster", c.Name)
		return heartbeat.Response{Retry: err.Error()}
	}
	t.policiesStored(ctx, c, p, resp.Refused)
	t.mu.Lock()
	t.policies[c.Name] = lastPolicies{attach: c.UID, digest: digest, refused: resp.Refused}
	t.mu.Unlock()
	return resp
}
