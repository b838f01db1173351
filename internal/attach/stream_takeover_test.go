package attach_test

import (
	"context"
	"os"
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
)

// An attacker who copied a running agent's identity opens a stream of its
// own: the agent's stream is closed with the reason (never left open
// without change notifications), the agent logs it and opens another,
// which closes the attacker's; a namespace created on the hub then still
// reaches the cluster through the agent.
func TestStolenStreamDoesNotTakeOverNotifications(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "takeover"
	member := env.Clusters[1]
	a := attachAndRun(t, name, member)
	waitHealth(t, name, 30*time.Second, fv1.HealthHealthy)
	url, pool := streamEndpoint(t, name)

	s, err := heartbeat.Dial(ctx, steal(t, a.Dir).transport(t, pool), url, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Beat(ctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true}); err != nil {
		t.Fatal(err)
	}
	// The agent, told its stream was replaced, opens another, which
	// replaces the attacker's.
	select {
	case <-s.Done():
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "newer stream") {
			t.Errorf("the attacker's stream ended with %v; want: replaced by a newer stream", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not take its stream back within 15 s")
	}
	waitFor(t, 20*time.Second, "the agent's log line saying why its stream ended", func(context.Context) (bool, error) {
		b, _ := os.ReadFile(filepath.Join(a.Dir, "logs", "agent.log"))
		return strings.Contains(string(b), "the stream ended") && strings.Contains(string(b), "newer stream"), nil
	})

	if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, name, "taken-back", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the namespace created in the cluster by the agent", func(ctx context.Context) (bool, error) {
		err := member.Client.Get(ctx, client.ObjectKey{Name: "taken-back"}, &corev1.Namespace{})
		return err == nil, client.IgnoreNotFound(err)
	})
	if err := attach.Detach(ctx, env.Hub.Client, name, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	<-a.Done()
}
