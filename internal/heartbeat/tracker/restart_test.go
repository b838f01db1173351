package tracker_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/heartbeat/tracker"
)

// A hub that takes over a fleet (restarted, or a new leader) writes the
// status of a cluster whose agent reports nothing new only once the last
// stored heartbeat time is RefreshEvery old, as the hub before it would
// have: a fleet coming back is not written all at once.
func TestNewTrackerDoesNotRewriteAnUnchangedCluster(t *testing.T) {
	ctx := context.Background()
	const cluster = "taken-over"
	identity(t, cluster)
	registered := getCluster(t, cluster)
	patched := registered.DeepCopy()
	meta.SetStatusCondition(&patched.Status.Conditions, metav1.Condition{Type: fv1.ClusterConditionRegistered, Status: metav1.ConditionTrue, Reason: "Test", Message: "registered by the test"})
	if err := env.Hub.Client.Status().Patch(ctx, patched, client.MergeFrom(registered)); err != nil {
		t.Fatal(err)
	}
	rep := heartbeat.Report{IntervalSeconds: 10, Reachable: true, Pods: 3, KubernetesVersion: "v1.36.3"}

	// The first hub hears the agent and writes its status.
	first := takeOver(t)
	if _, err := first.tr.Observe(ctx, cluster, rep); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the first hub's heartbeat written", func(ctx context.Context) (bool, error) {
		c := getCluster(t, cluster)
		return c.Status.Health == fv1.HealthHealthy && c.Status.LastHeartbeatTime != nil, nil
	})
	first.stop()
	time.Sleep(time.Second) // what else the write set off settles
	written := getCluster(t, cluster).ResourceVersion

	// The next hears the same report.
	next := takeOver(t)
	defer next.stop()
	if _, err := next.tr.Observe(ctx, cluster, rep); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if c := getCluster(t, cluster); c.ResourceVersion != written || c.Status.Health != fv1.HealthHealthy {
		t.Errorf("the hub that took over wrote the unchanged cluster again (resourceVersion %s → %s, health %s)", written, c.ResourceVersion, c.Status.Health)
	}

	// A report that changes something is written at once.
	rep.Pods = 4
	if _, err := next.tr.Observe(ctx, cluster, rep); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "a changed report written", func(ctx context.Context) (bool, error) {
		return getCluster(t, cluster).Status.Pods == 4, nil
	})
}

// running is a Tracker started on the test hub's API, as a hub's would be.
type running struct {
	tr   *tracker.Tracker
	stop func()
}

func takeOver(t *testing.T) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := tracker.New(env.Hub.Client)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := tr.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	poll(t, 10*time.Second, "the tracker leading", func(context.Context) (bool, error) { return tr.Leading(), nil })
	return running{tr: tr, stop: func() { cancel(); <-done }}
}
