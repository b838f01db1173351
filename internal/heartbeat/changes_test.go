package heartbeat

import (
	"testing"
	"time"
)

func TestChangesNotifyOnlyTheChangedCluster(t *testing.T) {
	c := NewChanges()
	notified := make(chan string, 10)
	for _, cluster := range []string{"a", "b"} {
		defer c.Subscribe(cluster, func() { notified <- cluster }, nil)()
	}
	a0, b0 := c.Token("a"), c.Token("b")
	c.Bump("a", Policies)
	switch got, ok := next(notified, time.Second); {
	case !ok:
		t.Fatal("a's subscriber was not notified of its change")
	case got != "a":
		t.Fatalf("a change of a notified %s", got)
	}
	if c.Token("a") == a0 || c.Token("b") != b0 {
		t.Errorf("tokens after a change of a: a %s → %s, b %s → %s", a0, c.Token("a"), b0, c.Token("b"))
	}
	if got, ok := next(notified, 100*time.Millisecond); ok {
		t.Errorf("a second notification, for %s", got)
	}
}

func TestChangesNewerSubscriptionWins(t *testing.T) {
	c := NewChanges()
	notified := make(chan string, 10)
	replaced := make(chan struct{})
	cancelOld := c.Subscribe("a", func() { notified <- "old" }, func() { close(replaced) })
	defer c.Subscribe("a", func() { notified <- "new" }, nil)()
	select {
	case <-replaced:
	case <-time.After(time.Second):
		t.Fatal("the replaced subscription was not told")
	}
	cancelOld() // the old stream ends after the agent reconnected
	c.Bump("a", Namespaces)
	switch got, ok := next(notified, time.Second); {
	case !ok:
		t.Fatal("the reconnected stream was not notified: the old stream's cancel removed it")
	case got != "new":
		t.Fatalf("notified the %s subscription", got)
	}
}

// next is the next notification within d; ok is false if none came.
func next(notified <-chan string, d time.Duration) (got string, ok bool) {
	select {
	case got = <-notified:
		return got, true
	case <-time.After(d):
		return "", false
	}
}

func TestChangesTokensDifferAcrossHubRestarts(t *testing.T) {
	before, after := NewChanges(), NewChanges()
	if before.Token("a") == after.Token("a") {
		t.Fatal("a restarted hub hands out the same token; agents would miss changes made while it was down")
	}
}

func TestTokenSaysWhatChanged(t *testing.T) {
	c := NewChanges()
	t0, _ := ParseToken(c.Token("a"))
	c.WrotePolicies("a", "42")
	t1, ok := ParseToken(c.Token("a"))
	if !ok {
		t.Fatalf("cannot parse %q", c.Token("a"))
	}
	if t1.PoliciesVersion != "42" {
		t.Errorf("token %v does not carry the written version", t1)
	}
	if !t1.Changed(t0, Policies) || t1.Changed(t0, Namespaces) {
		t.Errorf("after a policy change: %v → %v", t0, t1)
	}
	restarted, _ := ParseToken(NewChanges().Token("a"))
	if !restarted.Changed(t1, Namespaces) || !restarted.Changed(t1, Policies) {
		t.Errorf("a new epoch must change every kind: %v → %v", t1, restarted)
	}
	for _, bad := range []string{"", "x", "e.1", "e.1.2", "e.1.y.", ".1.2.3"} {
		if _, ok := ParseToken(bad); ok {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}
