package attach_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/pki"
)

// streamEndpoint reads where cluster's agent opens its stream, and the CA
// that verifies the hub there.
func streamEndpoint(t *testing.T, cluster string) (string, *x509.CertPool) {
	t.Helper()
	var info corev1.ConfigMap
	waitFor(t, 10*time.Second, "hub info", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &info)
		return err == nil, client.IgnoreNotFound(err)
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(info.Data["heartbeatCA"]))
	return info.Data["heartbeatURL"], pool
}

// agentTransport reaches the hub as cluster's agent, with a certificate the
// hub's CA signs for it directly, bound to the cluster's current attach.
func agentTransport(t *testing.T, cluster string, pool *x509.CertPool) *http.Transport {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.Hub.Dir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	groups := []string{fv1.AgentGroup}
	var c fv1.Cluster
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: cluster}, &c); err == nil {
		groups = append(groups, fv1.AttachGroup(string(c.UID)))
	}
	pair, err := ca.Client(t.TempDir(), "agent", fv1.AgentUser(cluster), groups...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	rt := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(rt.CloseIdleConnections)
	return rt
}

// The stream refuses, before it upgrades, what it cannot take, and says why;
// it pushes a change as soon as the hub makes it, with no heartbeat between.
func TestHeartbeatStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := attach.Attach(ctx, env.Hub.Client, env.Hub.Config, attach.Options{Name: "stream"}); err != nil {
		t.Fatal(err)
	}
	url, pool := streamEndpoint(t, "stream")
	rt := agentTransport(t, "stream", pool)

	// A request that does not ask to upgrade.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), heartbeat.Protocol) {
		t.Errorf("a plain GET: %s %q, want 426 naming %s", resp.Status, body, heartbeat.Protocol)
	}

	// An agent identity for a cluster the hub does not know.
	unknown := agentTransport(t, "ghost", pool)
	if _, err := heartbeat.Dial(ctx, unknown, url, func(string) {}); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "cluster ghost is not attached to this hub") {
		t.Errorf("dialing as an unknown cluster: %v", err)
	}

	// The cluster's own stream: a report is answered with the change
	// token, and a change is pushed without waiting for the next report.
	// Every token, in a reply or not, reaches onChange.
	pushed := make(chan string, 10)
	s, err := heartbeat.Dial(ctx, rt, url, func(tok string) { pushed <- tok })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reply, err := s.Beat(ctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true})
	if err != nil || reply.Changes == "" {
		t.Fatalf("first report: %+v, %v", reply, err)
	}
	// The stream's first message, a reply or a push, also carries the
	// namespaces' digest, which a token compares without.
	if tok := <-pushed; withoutDigest(tok) != withoutDigest(reply.Changes) {
		t.Errorf("the stream passed on %q, want the reply's token %q", tok, reply.Changes)
	}
	if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, "stream", "pushed", ""); err != nil {
		t.Fatal(err)
	}
	// The hub may push other changes first (the new cluster's desired
	// policies); one push within 5 s must say the namespaces changed.
	before, _ := heartbeat.ParseToken(reply.Changes)
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case tok := <-pushed:
			after, ok := heartbeat.ParseToken(tok)
			if !ok {
				t.Fatalf("pushed token %q does not parse", tok)
			}
			seen = after.Changed(before, heartbeat.Namespaces)
		case <-deadline:
			t.Fatalf("no pushed token says the namespaces changed since %q within 5 s of creating a namespace for the cluster", reply.Changes)
		}
	}

	// A policy report lands in the Cluster's status, all of it: a count
	// that drops to zero is zero, not the old value.
	policies := func(p *fv1.ClusterPolicyStatus) *fv1.ClusterPolicyStatus {
		t.Helper()
		if reply, err := s.Beat(ctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true, Policies: p}); err != nil || reply.Retry != "" {
			t.Fatalf("a policy report: %+v, %v", reply, err)
		}
		var c fv1.Cluster
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "stream"}, &c); err != nil {
			t.Fatal(err)
		}
		return c.Status.Policies
	}
	found := []fv1.Insight{{Kind: fv1.InsightViolation, Namespace: "a", Object: "Pod/p", Message: "m"}}
	if got := policies(&fv1.ClusterPolicyStatus{Synced: "True", Objects: 3, Violations: 1, Insights: found}); got == nil || got.Violations != 1 || len(got.Insights) != 1 || got.LastChangeTime == nil {
		t.Errorf("after a report with one violation: %+v", got)
	}
	if got := policies(&fv1.ClusterPolicyStatus{Synced: "True", Objects: 3}); got == nil || got.Violations != 0 || len(got.Insights) != 0 || got.Objects != 3 {
		t.Errorf("after a report with none: %+v", got)
	}
	// One the hub's API refuses is not stored, the reply says why (as
	// refused: sent again, it would be refused again), and the stream
	// carries on.
	reply, err = s.Beat(ctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true, Policies: &fv1.ClusterPolicyStatus{Synced: "Maybe"}})
	if err != nil || reply.Retry != "" || !strings.Contains(reply.Refused, "synced") {
		t.Errorf("an invalid policy report: %+v, %v; want a reply whose refused names the field", reply, err)
	}

	// A report too large to be one is refused, and the stream ends.
	_, err = s.Beat(ctx, heartbeat.Report{Error: strings.Repeat("x", 70<<10)})
	if err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Errorf("an oversized report: %v", err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Error("the hub kept the stream open after an oversized report")
	}
}

// withoutDigest is token s without the namespaces' digest.
func withoutDigest(s string) string {
	tok, ok := heartbeat.ParseToken(s)
	if !ok {
		return "unparsable " + s
	}
	tok.Namespaces = ""
	return tok.String()
}
