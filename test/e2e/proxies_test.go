package e2e

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/testenv"
)

// hubProxies stand between a hub and its agents, as a load balancer or NAT
// would: TCP proxies on the hub's agent endpoint and apiserver. The hub
// publishes the first as its agent endpoint (--agent-advertise-address).
type hubProxies struct {
	port      int // the agent endpoint's own
	endpoint  *testenv.TCPProxy
	apiserver *testenv.TCPProxy
}

func newHubProxies(t *testing.T) *hubProxies {
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
	return &hubProxies{port: port, endpoint: endpoint}
}

func (p *hubProxies) hubArgs() []string {
	return []string{"--agent-port", strconv.Itoa(p.port), "--agent-advertise-address", p.endpoint.Addr}
}

// route puts a proxy in front of env's hub apiserver; agents are given its
// address (startAgent).
func (p *hubProxies) route(t *testing.T, env *testenv.Env) {
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

// until polls cluster name on the hub until cond holds.
func until(t *testing.T, timeout time.Duration, what string, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
		return err == nil && cond(&c), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}
