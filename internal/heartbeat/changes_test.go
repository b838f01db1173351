package heartbeat

import (
	"context"
	"testing"
	"time"
)

func TestChangesWakeOnlyTheChangedCluster(t *testing.T) {
	c := NewChanges()
	a0, b0 := c.Token("a"), c.Token("b")
	if got := c.Wait(context.Background(), "a", ""); got != a0 {
		t.Fatalf("a poll with no token = %q, want the current %q at once", got, a0)
	}

	woke := make(chan string, 2)
	for _, cluster := range []string{"a", "b"} {
		since := c.Token(cluster)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			woke <- cluster + "=" + c.Wait(ctx, cluster, since)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let both park
	c.Bump("a", Policies)
	select {
	case got := <-woke:
		if got == "a="+a0 || got[:2] != "a=" {
			t.Fatalf("first to wake: %s, want a with a new token", got)
		}
	case <-time.After(time.Second):
		t.Fatal("a's poll did not wake on its change")
	}
	if got := <-woke; got != "b="+b0 {
		t.Errorf("b's poll = %s, want its unchanged token after the timeout", got)
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
