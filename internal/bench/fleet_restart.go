package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/procs"
)

// restartPolicy is the access policy created just before the hub is killed:
// a change the hub may not have passed on when it died.
const restartPolicy = "bench-fleet-restart"

// restartResult is how a fleet came back from its hub's SIGKILL.
type restartResult struct {
	hubReady   time.Duration // kill → the new hub process answers
	back       []time.Duration
	applied    []time.Duration // kill → the pending policy applied, per cluster
	sentBefore int             // clusters that had applied it before the kill
}

// measureRestart creates a policy, kills the hub with SIGKILL at once and
// starts it again on the same data dir (start does that), then waits until
// every Healthy cluster is Healthy with a report the new hub stored, and
// has applied the policy, or 3 minutes pass. It returns the new hub.
func measureRestart(ctx context.Context, cl client.Client, f *fleet, hub *procs.Proc, start func() (*procs.Proc, error), want int, logf func(string, ...any)) (*procs.Proc, *restartResult, error) {
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: restartPolicy}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "bench-restart"}}},
	}}
	// Right after the fan-out the hub is still storing every cluster's
	// policy report: at 10,000 clusters a create once timed out in its TLS
	// handshake. It is retried for a minute rather than end the run.
	if err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := cl.Create(ctx, p)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			logf("creating the policy before the kill: %v; retrying", err)
			return false, nil
		}
		return true, nil
	}); err != nil {
		return hub, nil, fmt.Errorf("the hub did not take the policy to kill it after: %w", err)
	}
	if err := hub.Signal(os.Kill); err != nil {
		return hub, nil, err
	}
	killed := time.Now()
	<-hub.Done()
	binding := policy.ObjectName(restartPolicy)
	res := &restartResult{}
	f.mu.Lock()
	for _, s := range f.sims {
		if _, ok := s.applied[binding]; ok {
			res.sentBefore++
		}
	}
	// Report times have a second's precision: one stamped in the second
	// after the kill can only be the new hub's.
	f.since = killed.Truncate(time.Second).Add(time.Second)
	f.mu.Unlock()
	logf("hub killed (SIGKILL) right after creating %s; %d clusters had applied it; starting it again", restartPolicy, res.sentBefore)

	hub, err := start()
	if err != nil {
		return nil, res, err
	}
	res.hubReady = time.Since(killed)
	logf("new hub ready %.1fs after the kill", res.hubReady.Seconds())
	for deadline := killed.Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res.back, res.applied = res.back[:0], res.applied[:0]
		f.mu.Lock()
		for _, s := range f.sims {
			if !s.backAt.IsZero() {
				res.back = append(res.back, s.backAt.Sub(killed))
			}
			if at, ok := s.applied[binding]; ok {
				res.applied = append(res.applied, max(0, at.Sub(killed)))
			}
		}
		f.mu.Unlock()
		if len(res.back) >= want && len(res.applied) >= want {
			break
		}
		select {
		case <-ctx.Done():
			return hub, res, ctx.Err()
		case <-hub.Done():
			return nil, res, fmt.Errorf("the restarted hub exited: %v", hub.Err())
		default:
		}
	}
	sortDurations(res.back)
	sortDurations(res.applied)
	logf("after the kill: %d/%d clusters Healthy with a report the new hub stored (p50/p99 %s, all %s); the pending policy applied in %d/%d (all %s)",
		len(res.back), want, pair(res.back), maxOf(res.back), len(res.applied), want, maxOf(res.applied))
	return hub, res, cl.Delete(ctx, p)
}

func printRestart(out io.Writer, n int, r *restartResult) {
	if r == nil {
		return
	}
	fmt.Fprintf(out, "  hub SIGKILL and restart, %d clusters: new hub ready %.1fs after the kill; Healthy with a report it stored %d clusters, p50/p99 %s, all %s; "+
		"the policy created just before the kill (applied by %d before it) applied by %d, all %s (target: all ≤ 60 s)\n",
		n, r.hubReady.Seconds(), len(r.back), pair(r.back), maxOf(r.back), r.sentBefore, len(r.applied), maxOf(r.applied))
}

// reportedSince says whether the hub stored a report of c's agent at since
// or later: a heartbeat or a policy report. A hub writes heartbeat times
// only every few minutes (heartbeat.RefreshEvery), also after a restart; the
// policy created before the kill has every agent report once.
func reportedSince(c *fv1.Cluster, since time.Time) bool {
	if hb := c.Status.LastHeartbeatTime; hb != nil && !hb.Time.Before(since) {
		return true
	}
	p := c.Status.Policies
	return p != nil && p.LastChangeTime != nil && !p.LastChangeTime.Time.Before(since)
}
