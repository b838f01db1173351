package tracker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/policy"
)

// A cluster's desired policies come down its stream: in the stream's first
// reply, then once per change, never again unchanged; clusters whose
// policies render the same get the same content under one digest.
func TestDesiredPoliciesPushedOnTheStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	streams := map[string]*raw{}
	first := map[string]heartbeat.Desired{}
	for _, name := range []string{"pushed-a", "pushed-b"} {
		url, rt := identity(t, name)
		s := openRaw(t, url, rt)
		streams[name] = s
		// The hub renders a new cluster's state once its hub namespace is
		// there: report until a reply carries it.
		poll(t, 20*time.Second, name+"'s desired policies in a reply", func(context.Context) (bool, error) {
			s.write(t, report(1))
			for {
				select {
				case m := <-s.msgs:
					if d, ok := desiredOf(t, m); ok {
						first[name] = d
						return true, nil
					}
				case <-time.After(200 * time.Millisecond):
					return false, nil
				}
			}
		})
	}
	a, b := first["pushed-a"], first["pushed-b"]
	if a.Digest != b.Digest {
		t.Errorf("two clusters with the same policies got digests %s and %s", a.Digest, b.Digest)
	}

	// An organization policy reaches clusters through their namespaces.
	for name := range streams {
		if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, name, "default", ""); err != nil {
			t.Fatal(err)
		}
	}
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "pushed-access"}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "pushed"}}},
	}}
	if err := env.Hub.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	defer env.Hub.Client.Delete(context.Background(), p)
	digestA := ""
	for _, name := range []string{"pushed-a", "pushed-b"} {
		s := streams[name]
		var got heartbeat.Desired
		deadline := time.After(10 * time.Second)
		for !strings.Contains(got.Data[policy.KeyObjects], policy.ObjectName(p.Name)) {
			select {
			case m := <-s.msgs:
				if d, ok := desiredOf(t, m); ok {
					got = d
				}
			case <-deadline:
				t.Fatalf("%s: no desired policies with the binding of an organization policy pushed within 10 s of its create; last pushed: %v", name, got.Data)
			}
		}
		if name == "pushed-b" && got.Digest != digestA {
			t.Errorf("two clusters with the same namespaces and policies got digests %s and %s", digestA, got.Digest)
		}
		digestA = got.Digest
		tok := ""
		s.write(t, report(2))
		for _, r := range s.replies(t, 1, 5*time.Second) {
			tok = r.Changes
		}
		if parsed, _ := heartbeat.ParseToken(tok); parsed.Policies != got.Digest {
			t.Errorf("%s: the reply's token names %s, the pushed state %s", name, parsed.Policies, got.Digest)
		}
	}
	// Nothing more is pushed while nothing changes.
	time.Sleep(time.Second)
	for name, s := range streams {
		s.write(t, report(3))
		for replied := false; !replied; {
			select {
			case m := <-s.msgs:
				if m.Desired != nil {
					t.Errorf("%s: unchanged desired policies sent again", name)
				}
				replied = m.Reply != nil
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: no reply within 5 s", name)
			}
		}
	}
}

// desiredOf decodes the desired policies m carries, checking their digest.
func desiredOf(t *testing.T, m heartbeat.Message) (heartbeat.Desired, bool) {
	t.Helper()
	if len(m.Desired) == 0 {
		return heartbeat.Desired{}, false
	}
	var d heartbeat.Desired
	if err := json.Unmarshal(m.Desired, &d); err != nil {
		t.Fatalf("pushed desired policies do not decode: %v", err)
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	return d, true
}
