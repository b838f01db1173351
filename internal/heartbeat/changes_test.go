package heartbeat

import (
	"encoding/json"
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
	digest, _, err := c.SetDesired("a", map[string]string{"objects.json": "[]"})
	if err != nil {
		t.Fatal(err)
	}
	t1, ok := ParseToken(c.Token("a"))
	if !ok {
		t.Fatalf("cannot parse %q", c.Token("a"))
	}
	if t1.Policies != digest {
		t.Errorf("token %v does not carry the desired policies' digest %s", t1, digest)
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

func TestDesiredSharedByContent(t *testing.T) {
	c := NewChanges()
	notified := make(chan string, 10)
	for _, cluster := range []string{"a", "b", "c"} {
		defer c.Subscribe(cluster, func() { notified <- cluster }, nil)()
	}
	same := map[string]string{"objects.json": `[{"kind":"ClusterRoleBinding"}]`, "podSecurity.json": "{}"}
	for _, cluster := range []string{"a", "b"} {
		if _, changed, err := c.SetDesired(cluster, same); err != nil || !changed {
			t.Fatalf("first desired state of %s: changed %v, %v", cluster, changed, err)
		}
	}
	other := map[string]string{"objects.json": "[]", "podSecurity.json": "{}"}
	c.SetDesired("c", other)
	if n := c.Shared(); n != 2 {
		t.Errorf("three clusters, two distinct contents: the hub holds %d", n)
	}
	for range 3 {
		if _, ok := next(notified, time.Second); !ok {
			t.Fatal("a cluster whose desired state changed was not notified")
		}
	}
	// The same content again changes nothing and wakes nobody.
	if _, changed, _ := c.SetDesired("a", map[string]string{"podSecurity.json": "{}", "objects.json": `[{"kind":"ClusterRoleBinding"}]`}); changed {
		t.Error("the same content, built anew, counted as a change")
	}
	if got, ok := next(notified, 100*time.Millisecond); ok {
		t.Errorf("an unchanged desired state notified %s", got)
	}
	_, da, ja := c.Current("a", false)
	_, db, jb := c.Current("b", false)
	if da != db || &ja[0] != &jb[0] {
		t.Errorf("a and b hold the same content under %s and %s, in two copies", da, db)
	}
	var d Desired
	if err := json.Unmarshal(ja, &d); err != nil || d.Verify() != nil || d.Data["objects.json"] != same["objects.json"] {
		t.Errorf("pushed desired state %s: %v, %v", ja, err, d.Verify())
	}
	// Moving and forgetting clusters lets go of what nobody holds.
	c.SetDesired("a", other)
	c.Forget("b")
	if n := c.Shared(); n != 1 {
		t.Errorf("every cluster holds one content: the hub holds %d", n)
	}
	d.Data["objects.json"] = "[]"
	if d.Verify() == nil {
		t.Error("content that is not what its digest names verified")
	}
}
