package tracker

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// Events tell transitions only: a write that leaves health as it was, and a
// policy report that changes no policy's sync, tell nothing.
func TestEventsOnTransitionsOnly(t *testing.T) {
	rec := record.NewFakeRecorder(100)
	pol := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "quota", UID: "p1"}}
	scheme := runtime.NewScheme()
	if err := fv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{Events: rec, Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(pol).Build()}
	c := &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c1", UID: "u1", CreationTimestamp: metav1.Now()}}
	now := time.Now()
	report := func(o heartbeat.Observation) fv1.ClusterStatus { return heartbeat.Status(now, o, c.Status) }
	step := func(next fv1.ClusterStatus, want string) {
		t.Helper()
		tr.healthWritten(c, next)
		c.Status = next
		expect(t, rec, want)
	}

	c.Status.Health = fv1.HealthUnknown
	step(report(heartbeat.Observation{Seen: now, Report: &heartbeat.Report{Reachable: true}}), "Normal Connected")
	step(report(heartbeat.Observation{Seen: now, Report: &heartbeat.Report{Reachable: true}}), "")
	step(report(heartbeat.Observation{Seen: now, Report: &heartbeat.Report{Reachable: true, Failing: []string{"etcd: down"}}}), "Warning Unhealthy was Healthy; ComponentFailing: etcd: down")
	step(report(heartbeat.Observation{Seen: now.Add(-time.Minute), Report: &heartbeat.Report{Reachable: true}}), "Warning Disconnected was Unhealthy; HeartbeatMissed")
	step(report(heartbeat.Observation{Seen: now.Add(-time.Minute), Report: &heartbeat.Report{Reachable: true}}), "")
	step(report(heartbeat.Observation{Seen: now, Report: &heartbeat.Report{Reachable: true}}), "Normal Healthy healthy again (was Disconnected)")
	if !meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionHealthy) {
		t.Fatal("the cluster's Healthy condition is not True at the end")
	}

	ctx := context.Background()
	failing := &fv1.ClusterPolicyStatus{Synced: "False", Insights: []fv1.Insight{{Policy: "quota", Kind: fv1.InsightSyncError, Object: "ResourceQuota/q", Message: "forbidden"}}}
	tr.policiesStored(ctx, c, failing, "")
	expect(t, rec, "Warning PolicySyncFailed policy quota", "Warning SyncFailed cluster c1 cannot apply it: ResourceQuota/q: forbidden")
	c.Status.Policies = failing
	tr.policiesStored(ctx, c, failing, "")
	expect(t, rec, "")
	synced := &fv1.ClusterPolicyStatus{Synced: "True", Objects: 3}
	tr.policiesStored(ctx, c, synced, "refused") // not stored: nothing to tell
	expect(t, rec, "")
	tr.policiesStored(ctx, c, synced, "")
	expect(t, rec, "Normal PoliciesApplied", "Normal Applied cluster c1 applies it again")
}

// expect checks the events recorded since the last call begin with want,
// in order; "" wants none.
func expect(t *testing.T, rec *record.FakeRecorder, want ...string) {
	t.Helper()
	var got []string
	for len(rec.Events) > 0 {
		got = append(got, <-rec.Events)
	}
	if len(want) == 1 && want[0] == "" {
		want = nil
	}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
}
