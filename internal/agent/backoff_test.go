package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// Agents that lose their hub together come back spread out, over a window
// that grows while the hub stays away, and never wait a whole interval.
func TestReconnectBackoffJitteredAndGrowing(t *testing.T) {
	const agents = 1000
	for _, tc := range []struct {
		interval time.Duration
		floors   []time.Duration // the shortest wait of each retry
	}{
		{10 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{2 * time.Second, []time.Duration{500 * time.Millisecond, time.Second, time.Second}},
	} {
		waits := make([][]time.Duration, len(tc.floors))
		for range agents {
			b := reconnectBackoff(tc.interval)
			for i := range waits {
				waits[i] = append(waits[i], b.Step())
			}
		}
		for i, ws := range waits {
			floor := tc.floors[i]
			shortest, longest := slices.Min(ws), slices.Max(ws)
			if shortest < floor || longest >= 2*floor || longest >= tc.interval {
				t.Errorf("interval %s, retry %d: waits from %s to %s, want within [%s, %s) and under the interval", tc.interval, i+1, shortest, longest, floor, 2*floor)
			}
			// Spread over most of the range: agents in lockstep would share one wait.
			slices.Sort(ws)
			if len(slices.Compact(ws)) < agents/2 || longest-shortest < floor*8/10 {
				t.Errorf("interval %s, retry %d: waits spanning %s among %d agents: not spread", tc.interval, i+1, longest-shortest, agents)
			}
		}
	}
}

// An agent that hears of a restarted hub (a new epoch) fetches within
// restartSpread, not at once, unless a later token shows a change since.
func TestRestartedHubFetchedSpreadOut(t *testing.T) {
	s := newHubState(nil)
	jobs := make(chan struct{}, 10)
	s.onJobs = func() { jobs <- struct{}{} }
	pending := func() bool {
		select {
		case <-s.t:
			return true
		default:
			return false
		}
	}
	before := heartbeat.Token{Epoch: "old", Revs: [3]uint64{4, 2, 1}}
	s.heard(before.String())
	if !pending() {
		t.Fatal("the first token asked for no fetch")
	}
	s.mu.Lock()
	s.have = before
	s.mu.Unlock()
	<-jobs

	restarted := heartbeat.Token{Epoch: "new", Revs: [3]uint64{1, 1, 0}, Policies: "d1"}
	heard := time.Now()
	s.heard(restarted.String())
	restarted.Policies = "d2" // a policy change comes down the stream; namespaces did not move
	s.heard(restarted.String())
	if pending() || len(jobs) > 0 {
		t.Fatal("the agent fetched the moment it heard of the restart")
	}
	deadline := time.After(restartSpread + time.Second)
	for !pending() {
		select {
		case <-deadline:
			t.Fatalf("no fetch within %s of the restart", restartSpread)
		case <-time.After(10 * time.Millisecond):
		}
	}
	<-jobs
	t.Logf("fetched %s after hearing of the restart", time.Since(heard).Round(time.Millisecond))

	// A change after the restart is fetched at once, spread or not.
	again := heartbeat.Token{Epoch: "newer", Revs: [3]uint64{1, 1, 0}}
	s.heard(again.String())
	again.Revs[heartbeat.Namespaces]++
	s.heard(again.String())
	if !pending() {
		t.Fatal("a change to the namespaces after the restart was not fetched at once")
	}
}

// An agent that holds the namespaces a restarted hub's token digests lists
// none; one whose copy differs lists them.
func TestRestartedHubHoldingTheSameNamespacesIsNotListed(t *testing.T) {
	nss := []fv1.ClusterNamespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", ResourceVersion: "10"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", ResourceVersion: "12"}},
	}
	before := heartbeat.Token{Epoch: "old", Revs: [3]uint64{4, 2, 1}}
	fetched := func() *hubState {
		s := newHubState(nil) // no hub: a list would fail the test
		s.heard(before.String())
		s.mu.Lock()
		s.nss, s.fetched[heartbeat.Namespaces], s.have = nss, true, before
		s.mu.Unlock()
		return s
	}

	s := fetched()
	same := heartbeat.Token{Epoch: "new", Revs: [3]uint64{1, 1, 0}, Namespaces: heartbeat.NamespacesDigest(nss)}
	s.heard(same.String())
	if err := s.fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ns, ok := s.namespaces(); !ok || len(ns) != 2 {
		t.Errorf("the namespaces held were dropped: %v, %v", ns, ok)
	}

	for name, tok := range map[string]heartbeat.Token{
		"other namespaces": {Epoch: "new", Namespaces: heartbeat.NamespacesDigest(nss[:1])},
		"an earlier hub":   {Epoch: "new"},
	} {
		s := fetched()
		s.heard(tok.String())
		s.mu.Lock()
		listed := tok.Changed(s.have, heartbeat.Namespaces)
		s.mu.Unlock()
		if !listed {
			t.Errorf("%s: the agent will not list its namespaces", name)
		}
	}
}
