package tracker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/hub"
)

// Reports written without waiting for replies, in one TLS record, are all
// answered, in order; one with an unparsable quantity is answered with an
// error naming it (and logged), and the stream takes the next report.
func TestPipelinedReportsAnsweredInOrder(t *testing.T) {
	url, rt := identity(t, "pipelined")
	s := openRaw(t, url, rt)
	const n = 20
	var lines []string
	for i := range n {
		if i%7 == 3 {
			lines = append(lines, `{"intervalSeconds":10,"reachable":true,"capacity":{"cpu":"lots"}}`)
			continue
		}
		lines = append(lines, report(int32(i)))
	}
	before := hubLogCount("refused an agent's report")
	s.write(t, lines...)
	replies := s.replies(t, n, 10*time.Second)
	for i, r := range replies {
		bad := i%7 == 3
		switch {
		case bad && (!strings.Contains(r.Error, "bad report") || !strings.Contains(r.Error, "quantities must match")):
			t.Errorf("reply %d, to a report whose cpu is %q: %+v; want an error naming the quantity", i, "lots", r)
		case !bad && (r.Error != "" || r.Changes == ""):
			t.Errorf("reply %d, to a good report: %+v", i, r)
		}
	}
	// The stream goes on after them.
	s.write(t, report(99))
	if r := s.replies(t, 1, 5*time.Second)[0]; r.Error != "" {
		t.Errorf("a report after the pipelined ones: %+v", r)
	}
	poll(t, 10*time.Second, "the last report in the Cluster's status", func(ctx context.Context) (bool, error) {
		return getCluster(t, "pipelined").Status.Pods == 99, nil
	})
	poll(t, 10*time.Second, "a hub log line for the refused report", func(ctx context.Context) (bool, error) {
		return hubLogCount("refused an agent's report") > before, nil
	})
}

// A report whose status the hub's API refuses (over the CRD's limits) is
// refused with the reason, once: sent again, it is answered from memory,
// and the hub does not retry the write on its own.
func TestUnstorableReportRefused(t *testing.T) {
	url, rt := identity(t, "unstorable")
	s := openRaw(t, url, rt)
	insights := make([]fv1.Insight, 101) // the CRD allows 100
	for i := range insights {
		insights[i] = fv1.Insight{Kind: fv1.InsightViolation, Namespace: "a", Object: "Pod/p", Message: "m"}
	}
	rep, _ := json.Marshal(heartbeat.Report{IntervalSeconds: 10, Reachable: true, Policies: &fv1.ClusterPolicyStatus{Synced: "True", Insights: insights}})
	before := hubLogCount("refused an agent's policy report")
	for range 3 {
		s.write(t, string(rep))
		r := s.replies(t, 1, 10*time.Second)[0]
		if r.Refused == "" || r.Retry != "" || !strings.Contains(r.Refused, "100") {
			t.Fatalf("a policy report of 101 insights: %+v; want it refused, naming the limit of 100, not retried", r)
		}
	}
	// The hub's log is flushed every 5 s.
	time.Sleep(6 * time.Second)
	if got := hubLogCount("refused an agent's policy report") - before; got != 1 {
		t.Errorf("the hub tried to store the same refused report %d times, want once", got)
	}

	// Health the CRD cannot hold: a condition message over 32 KiB. The
	// write fails in the background; the next replies say why.
	huge, _ := json.Marshal(heartbeat.Report{IntervalSeconds: 10, Reachable: true, Failing: []string{"etcd: " + strings.Repeat("x", 40<<10)}})
	refused := ""
	for deadline := time.Now().Add(10 * time.Second); refused == "" && time.Now().Before(deadline); {
		s.write(t, string(huge))
		refused = s.replies(t, 1, 10*time.Second)[0].Refused
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(refused, "health") || !strings.Contains(refused, "32768") {
		t.Fatalf("replies to a report whose health the hub cannot store: refused %q; want the reason, naming the limit", refused)
	}
	// Not retried in a loop: with no report coming, no write is tried.
	time.Sleep(6 * time.Second)
	tries := hubLogCount("refuses a cluster's health")
	if tries == 0 {
		t.Error("no hub log line for the refused health")
	}
	time.Sleep(6 * time.Second)
	if again := hubLogCount("refuses a cluster's health"); again != tries {
		t.Errorf("with no new report, the hub tried the refused health write %d more times", again-tries)
	}
	// A storable report is taken and clears it.
	s.write(t, report(5))
	poll(t, 10*time.Second, "a storable report in the status", func(ctx context.Context) (bool, error) {
		return getCluster(t, "unstorable").Status.Pods == 5, nil
	})
}

// A second stream of the same identity replaces the first, which is told
// why and closed; change notifications go to the live stream, and the
// agent that opens the next one takes them back. Opening streams in a loop
// is refused before the upgrade.
func TestSecondStreamReplacesFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "replaced"
	url, rt := identity(t, name)
	type stream struct {
		*heartbeat.Stream
		pushed chan string
	}
	dial := func() stream {
		t.Helper()
		pushed := make(chan string, 100)
		s, err := heartbeat.Dial(ctx, rt, url, func(tok string) { pushed <- tok })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Beat(ctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true}); err != nil {
			t.Fatal(err)
		}
		for len(pushed) > 0 {
			<-pushed
		}
		return stream{s, pushed}
	}
	replaced := func(s stream, who string) {
		t.Helper()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s stayed open after a newer stream of its identity opened", who)
		}
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "newer stream of cluster "+name) {
			t.Errorf("%s ended with %v; want the reason: replaced by a newer stream", who, err)
		}
	}
	notified := func(s stream, who, ns string) {
		t.Helper()
		if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, name, ns, ""); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case tok := <-s.pushed:
				if after, ok := heartbeat.ParseToken(tok); ok && after.Revs[heartbeat.Namespaces] > 0 {
					return
				}
			case <-deadline:
				t.Fatalf("%s, the live stream, was not told of a new namespace within 5 s", who)
			}
		}
	}

	agent := dial()
	attacker := dial()
	replaced(agent, "the agent's stream")
	notified(attacker, "the attacker's stream", "one")
	// The agent, whose stream ended, opens another and takes them back.
	again := dial()
	replaced(attacker, "the attacker's stream")
	notified(again, "the agent's new stream", "two")

	// A loop of opens is refused with the reason before the upgrade.
	var refused error
	for range 5 {
		s, err := heartbeat.Dial(ctx, rt, url, func(string) {})
		if err != nil {
			refused = err
			break
		}
		s.Close()
	}
	if refused == nil || !strings.Contains(refused.Error(), "429") || !strings.Contains(refused.Error(), "opens streams faster") {
		t.Errorf("opening 5 more streams at once: %v; want 429 saying the identity opens streams too fast", refused)
	}
}

// Reports from one identity as fast as the hub answers make at most one
// status write per heartbeat.MinWriteGap, and the status ends at the last.
func TestReportsCoalesced(t *testing.T) {
	const name = "coalesced"
	url, rt := identity(t, name)
	cl, err := client.NewWithWatch(env.Hub.Config, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cl.Watch(context.Background(), &fv1.ClusterList{}, client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	s := openRaw(t, url, rt)
	const batches, per = 6, 20
	start := time.Now()
	last := int32(0)
	for b := range batches {
		var lines []string
		for i := range per {
			last = int32(b*per + i + 1)
			lines = append(lines, report(last))
		}
		s.write(t, lines...)
		s.replies(t, per, 10*time.Second)
	}
	elapsed := time.Since(start)
	poll(t, 10*time.Second, "the last report in the status", func(ctx context.Context) (bool, error) {
		return getCluster(t, name).Status.Pods == last, nil
	})
	// The tracker's writes are those that change the pod count: the
	// hub's controllers write the Cluster too (registration, conditions).
	writes, pods := 0, int32(-1)
	for drained := false; !drained; {
		select {
		case ev := <-w.ResultChan():
			if c, ok := ev.Object.(*fv1.Cluster); ok && ev.Type == watch.Modified && c.Status.Pods != pods {
				writes, pods = writes+1, c.Status.Pods
			}
		case <-time.After(time.Second):
			drained = true
		}
	}
	// One write a gap, the first at once and the last after the reports.
	limit := int(elapsed/heartbeat.MinWriteGap) + 3
	t.Logf("%d reports over %s: %d status writes of the Cluster (limit %d)", batches*per, elapsed.Round(time.Millisecond), writes, limit)
	if writes > limit {
		t.Errorf("%d reports over %s made %d writes of the Cluster, want at most %d", batches*per, elapsed, writes, limit)
	}
}
