package e2e

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/testenv"
)

// partition is the network between a hub and its agents: TCP proxies on the
// hub's agent endpoint and apiserver. The hub publishes the proxy as its
// agent endpoint with --agent-advertise-address, as it would a load
// balancer's address.
type partition struct {
	port      int // the agent endpoint's own
	endpoint  *testenv.TCPProxy
	apiserver *testenv.TCPProxy
}

func newPartition(t *testing.T) *partition {
	t.Helper()
	port, err := datadir.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := testenv.NewTCPProxy("127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(endpoint.Close)
	return &partition{port: port, endpoint: endpoint}
}

func (p *partition) hubArgs() []string {
	return []string{"--agent-port", strconv.Itoa(p.port), "--agent-advertise-address", p.endpoint.Addr}
}

// route puts a proxy in front of env's hub apiserver; agents are given its
// address (startAgent).
func (p *partition) route(t *testing.T, env *testenv.Env) {
	t.Helper()
	u, err := url.Parse(env.Hub.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	if p.apiserver, err = testenv.NewTCPProxy("127.0.0.1:0", u.Host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.apiserver.Close)
}

// until polls cluster name on the hub until cond holds, and returns when it did.
func until(t *testing.T, timeout time.Duration, what string, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) time.Time {
	t.Helper()
	at, err := untilErr(timeout, cond, env, name)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
	return at
}

func untilErr(timeout time.Duration, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		at = time.Now()
		return err == nil && cond(&c), nil
	})
	return at, err
}
