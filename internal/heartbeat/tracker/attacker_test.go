package tracker_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/testenv"
)

// These tests play an attacker holding one cluster's agent identity
// against a real hub: a certificate the hub's CA signs for the cluster's
// current attach is what an agent's data dir holds.

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(testenv.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// identity attaches cluster (no agent runs) and returns where its stream
// opens and a transport that holds its agent identity.
func identity(t *testing.T, cluster string) (string, *http.Transport) {
	t.Helper()
	ctx := context.Background()
	if _, err := attach.Attach(ctx, env.Hub.Client, env.Hub.Config, attach.Options{Name: cluster}); err != nil {
		t.Fatal(err)
	}
	var c fv1.Cluster
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil {
		t.Fatal(err)
	}
	var info corev1.ConfigMap
	poll(t, 10*time.Second, "hub info", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &info)
		return err == nil && info.Data["heartbeatURL"] != "", client.IgnoreNotFound(err)
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(info.Data["heartbeatCA"]))
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.Hub.Dir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Client(t.TempDir(), "agent", fv1.AgentUser(cluster), fv1.AgentGroup, fv1.AttachGroup(string(c.UID)))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	rt := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(rt.CloseIdleConnections)
	return info.Data["heartbeatURL"], rt
}

// raw is a stream driven by hand: reports written when the test likes,
// every message the hub sends read in order.
type raw struct {
	rwc  io.ReadWriteCloser
	msgs chan heartbeat.Message
}

func openRaw(t *testing.T, url string, rt http.RoundTripper) *raw {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", heartbeat.Protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("opening a stream: %s %s", resp.Status, body)
	}
	s := &raw{rwc: resp.Body.(io.ReadWriteCloser), msgs: make(chan heartbeat.Message, 10000)}
	t.Cleanup(func() { s.rwc.Close() })
	go func() {
		defer close(s.msgs)
		dec := json.NewDecoder(bufio.NewReader(s.rwc))
		for {
			var m heartbeat.Message
			if dec.Decode(&m) != nil {
				return
			}
			s.msgs <- m
		}
	}()
	return s
}

// write sends lines (reports, or anything) in one write: TLS carries them
// in one record, as an agent that does not wait for replies would.
func (s *raw) write(t *testing.T, lines ...string) {
	t.Helper()
	if _, err := io.WriteString(s.rwc, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
}

// replies reads the next n replies, skipping pushed tokens.
func (s *raw) replies(t *testing.T, n int, within time.Duration) []heartbeat.Response {
	t.Helper()
	var out []heartbeat.Response
	deadline := time.After(within)
	for len(out) < n {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("the hub closed the stream after %d of %d replies", len(out), n)
			}
			if m.Reply != nil {
				out = append(out, *m.Reply)
			}
		case <-deadline:
			t.Fatalf("%d of %d replies within %s", len(out), n, within)
		}
	}
	return out
}

func report(pods int32) string {
	b, _ := json.Marshal(heartbeat.Report{IntervalSeconds: 10, Reachable: true, Pods: pods})
	return string(b)
}

func getCluster(t *testing.T, name string) *fv1.Cluster {
	t.Helper()
	var c fv1.Cluster
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func poll(t *testing.T, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// hubLogCount counts the hub's log lines holding s. The hub logs to a file
// in its data dir, flushed every 5 s.
func hubLogCount(s string) int {
	b, _ := os.ReadFile(filepath.Join(env.Hub.Dir, "logs", "hub.log"))
	return strings.Count(string(b), s)
}

// An agent's identity cannot turn its stream into a tunnel the hub did not
// ask for: the report is refused and the stream goes on plain.
func TestUnaskedMultiplexRefused(t *testing.T) {
	url, rt := identity(t, "unasked")
	s := openRaw(t, url, rt)
	rep, _ := json.Marshal(heartbeat.Report{IntervalSeconds: 10, Reachable: true, Multiplex: true})
	s.write(t, string(rep))
	if r := s.replies(t, 1, 10*time.Second)[0]; !strings.Contains(r.Error, "did not ask") {
		t.Fatalf("an unasked Multiplex report: %+v; want it refused, saying the hub did not ask", r)
	}
	s.write(t, report(7))
	if r := s.replies(t, 1, 10*time.Second)[0]; r.Error != "" {
		t.Fatalf("a plain report after the refusal: %+v", r)
	}
	poll(t, 10*time.Second, "the plain report in the status", func(ctx context.Context) (bool, error) {
		return getCluster(t, "unasked").Status.Pods == 7, nil
	})
}
