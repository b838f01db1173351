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
	hubReady time.Duration // kill → the new hub process answers
	// connected[k] is when the new hub held k+1 agent streams (its
	// flotilla_hub_agent_streams); a stream is taken with its first report.
	connected  []time.Duration
	applied    []time.Duration // kill → the pending policy applied, per cluster
	sentBefore int             // clusters that had applied it before the kill
	notHealthy int             // clusters whose status was not Healthy at the end
}

// measureRestart creates a policy, kills the hub with SIGKILL at once and
// starts it again on the same data dir (start does that), then waits until
// the new hub holds a stream of every cluster that was Healthy, every one of
// them has applied the policy and is Healthy in its status, or 3 minutes
// pass. It returns the new hub.
//
// The new hub writes no heartbeat time for a cluster it hears from within
// heartbeat.RefreshEvery of the last one stored, as before the restart, so
// its streams, not the Cluster status, tell which agents reached it.
func measureRestart(ctx context.Context, cl client.Client, f *fleet, hub *procs.Proc, hubDir string, start func() (*procs.Proc, error), want int, profile string, logf func(string, ...any)) (*procs.Proc, *restartResult, error) {
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
	f.mu.Unlock()
	logf("hub killed (SIGKILL) right after creating %s; %d clusters had applied it; starting it again", restartPolicy, res.sentBefore)

	hub, err := start()
	if err != nil {
		return nil, res, err
	}
	res.hubReady = time.Since(killed)
	logf("new hub ready %.1fs after the kill", res.hubReady.Seconds())
	stopProfile, err := cpuProfiles(profile, hubDir, "reconnect", 20*time.Second)
	if err != nil {
		return hub, res, err
	}
	defer func() {
		if where := stopProfile(); where != "" {
			logf("%s", where)
		}
	}()
	for deadline := killed.Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if n, err := hubStreams(hubDir); err == nil {
			for len(res.connected) < n {
				res.connected = append(res.connected, time.Since(killed))
			}
		}
		res.applied, res.notHealthy = res.applied[:0], 0
		f.mu.Lock()
		for _, s := range f.sims {
			if at, ok := s.applied[binding]; ok {
				res.applied = append(res.applied, max(0, at.Sub(killed)))
			}
			if s.health != fv1.HealthHealthy {
				res.notHealthy++
			}
		}
		f.mu.Unlock()
		if len(res.connected) >= want && len(res.applied) >= want && res.notHealthy == 0 {
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
	sortDurations(res.applied)
	logf("after the kill: the new hub held the streams of %d/%d clusters (p50/p99 %s, all %s); the pending policy applied in %d/%d (all %s); %d not Healthy",
		len(res.connected), want, pair(res.connected), maxOf(res.connected), len(res.applied), want, maxOf(res.applied), res.notHealthy)
	return hub, res, cl.Delete(ctx, p)
}

func printRestart(out io.Writer, n int, r *restartResult) {
	if r == nil {
		return
	}
	fmt.Fprintf(out, "  hub SIGKILL and restart, %d clusters: new hub ready %.1fs after the kill; streams of %d clusters on it, p50/p99 %s, all %s; "+
		"the policy created just before the kill (applied by %d before it) applied by %d, all %s; %d clusters not Healthy at the end (target: all ≤ 60 s)\n",
		n, r.hubReady.Seconds(), len(r.connected), pair(r.connected), maxOf(r.connected), r.sentBefore, len(r.applied), maxOf(r.applied), r.notHealthy)
}
