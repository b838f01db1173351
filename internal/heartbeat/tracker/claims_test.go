package tracker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/heartbeat"
)

// A report that claims another cluster, or replays a number the stream has
// taken, is refused with the reason (and logged, naming both clusters); the
// stream goes on, and reports of agents that number nothing are taken.
func TestForeignAndReplayedReportsRefused(t *testing.T) {
	const name = "claims"
	url, rt := identity(t, name)
	s := openRaw(t, url, rt)
	rep := func(cluster string, seq uint64, pods int32) string {
		b, _ := json.Marshal(heartbeat.Report{IntervalSeconds: 10, Reachable: true, Pods: pods, Cluster: cluster, Seq: seq})
		return string(b)
	}
	before := hubLogCount(`claims cluster \"victim\"`)
	s.write(t,
		rep(name, 1, 1),     // taken
		rep("victim", 2, 2), // another cluster's
		rep(name, 1, 3),     // replayed
		rep(name, 2, 4),     // taken
		rep("", 0, 5),       // unnumbered, after numbered ones
	)
	replies := s.replies(t, 5, 10*time.Second)
	want := []string{"", `claims cluster "victim", but this stream's certificate is cluster "claims"'s`, "numbered 1, not above 1", "", "numbers all its reports or none"}
	for i, r := range replies {
		if want[i] == "" && r.Error != "" || !strings.Contains(r.Error, want[i]) {
			t.Errorf("reply %d: %+v; want error %q", i, r, want[i])
		}
	}
	poll(t, 10*time.Second, "the last report taken in the status", func(ctx context.Context) (bool, error) {
		return getCluster(t, name).Status.Pods == 4, nil
	})
	poll(t, 10*time.Second, "a hub log line naming both clusters", func(ctx context.Context) (bool, error) {
		return hubLogCount(`claims cluster \"victim\"`) > before, nil
	})

	// An agent that predates the fields, on a stream of its own.
	old := openRaw(t, url, rt)
	old.write(t, rep("", 0, 7), rep("", 0, 8))
	for i, r := range old.replies(t, 2, 10*time.Second) {
		if r.Error != "" {
			t.Errorf("report %d of an agent that numbers nothing: %+v", i, r)
		}
	}
}
