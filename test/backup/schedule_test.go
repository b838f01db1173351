package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// TestScheduleOnGroup: a schedule on a group makes one backup per member
// at each tick, picks up a cluster that joins, and its short TTL prunes
// the backups, from the hub and from the location.
func TestScheduleOnGroup(t *testing.T) {
	ctx := context.Background()
	hub := env.Hub.Client
	if err := hub.Create(ctx, &fv1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "nightly"}}); err != nil {
		t.Fatal(err)
	}
	moveTo := func(cluster, group string) {
		t.Helper()
		c := &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}
		if err := hub.Patch(ctx, c, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"group":"`+group+`"}}`))); err != nil {
			t.Fatal(err)
		}
	}
	moveTo("src", "nightly")
	t.Cleanup(func() {
		flotillaErr("schedule", "delete", "tick")
		moveTo("src", "pair")
		moveTo("dst", "pair")
	})
	apply(t, members["src"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: ticks}\n")
	apply(t, members["dst"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: ticks}\n")

	flotilla(t, "schedule", "create", "tick", "--cluster-group", "nightly", "--cron", "@every 3s", "--ttl", "12s", "--namespaces", "ticks")
	first := waitScheduled(t, "src")
	moveTo("dst", "nightly")
	waitScheduled(t, "dst")

	// Each backup completes and is pruned once its 12 s are up.
	waitFor(t, 60*time.Second, "the schedule's first backup completes", func(ctx context.Context) (bool, error) {
		var b fv1.Backup
		err := hub.Get(ctx, client.ObjectKey{Name: first}, &b)
		return err == nil && b.Status.Phase == fv1.PhaseCompleted || apierrors.IsNotFound(err), nil
	})
	waitFor(t, 60*time.Second, "the first backup pruned by its TTL", func(ctx context.Context) (bool, error) {
		var b fv1.Backup
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Name: first}, &b)), nil
	})
	dir := filepath.Join(env.Hub.Dir, "backups", fv1.DefaultLocation, "backups", first)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the pruned backup's objects remain in the hub location: %v", err)
	}

	out := flotilla(t, "schedule", "list")
	if !contains(out, "tick", "@every 3s", "group nightly") {
		t.Errorf("schedule list:\n%s", out)
	}
	flotilla(t, "schedule", "pause", "tick")
	var s fv1.Schedule
	waitFor(t, 10*time.Second, "the paused schedule says so", func(ctx context.Context) (bool, error) {
		if err := hub.Get(ctx, client.ObjectKey{Name: "tick"}, &s); err != nil {
			return false, err
		}
		for _, c := range s.Status.Conditions {
			if c.Reason == "Paused" {
				return true, nil
			}
		}
		return false, nil
	})
}

// waitScheduled waits for a backup of cluster made by schedule tick and
// returns its name.
func waitScheduled(t *testing.T, cluster string) string {
	t.Helper()
	var name string
	waitFor(t, 30*time.Second, "a scheduled backup of "+cluster, func(ctx context.Context) (bool, error) {
		var l fv1.BackupList
		if err := env.Hub.Client.List(ctx, &l, client.MatchingLabels{fv1.LabelSchedule: "tick", fv1.LabelCluster: cluster}); err != nil {
			return false, err
		}
		if len(l.Items) > 0 {
			name = l.Items[0].Name
		}
		return name != "", nil
	})
	return name
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !stringsContains(s, sub) {
			return false
		}
	}
	return true
}
