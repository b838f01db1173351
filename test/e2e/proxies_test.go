package e2e

import (
	"context"
	"net/url"
	"strconv"
	"sync"
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

func newHubProxies(t testing.TB) *hubProxies {
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
func (p *hubProxies) route(t testing.TB, env *testenv.Env) {
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

// cutAndHeal cuts the network between the hub and its agents for d and
// heals it. Every cluster of env must turn Disconnected within 3 heartbeats
// of the cut (the hub checks every second) and be Healthy again, on a
// heartbeat sent after the heal, within 2 heartbeats of it. It returns how
// long the slowest cluster took for each.
func (p *hubProxies) cutAndHeal(t testing.TB, env *testenv.Env, d, interval time.Duration) (disconnected, healed time.Duration) {
	t.Helper()
	p.endpoint.Close()
	p.apiserver.Close()
	cutAt := time.Now()
	disconnected = p.eachCluster(t, env, "Disconnected", cutAt, 3*interval+1500*time.Millisecond, func(c *fv1.Cluster) bool {
		return c.Status.Health == fv1.HealthDisconnected
	})
	time.Sleep(time.Until(cutAt.Add(d)))
	// Called off the test's goroutine: errors, not fatal ones.
	for _, proxy := range []*testenv.TCPProxy{p.endpoint, p.apiserver} {
		if err := proxy.Heal(); err != nil {
			t.Errorf("healing the network: %v", err)
			return disconnected, 0
		}
	}
	healAt := time.Now()
	// Heartbeat times have a second's precision; each cluster was
	// Disconnected, so a heartbeat stamped in the heal's second or later
	// is one the hub heard after the heal.
	since := healAt.Truncate(time.Second)
	healed = p.eachCluster(t, env, "Healthy after the heal", healAt, 2*interval+time.Second, func(c *fv1.Cluster) bool {
		hb := c.Status.LastHeartbeatTime
		return c.Status.Health == fv1.HealthHealthy && hb != nil && !hb.Time.Before(since)
	})
	return disconnected, healed
}

// eachCluster waits until cond holds for every cluster of env, logs how
// long after since each took, fails those that took longer than want, and
// returns the longest.
func (p *hubProxies) eachCluster(t testing.TB, env *testenv.Env, what string, since time.Time, want time.Duration, cond func(*fv1.Cluster) bool) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var longest time.Duration
	var wg sync.WaitGroup
	for _, c := range env.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := untilErr(want+30*time.Second, cond, env, c.Name)
			if err != nil {
				t.Errorf("%s %s: not within %s: %v", c.Name, what, want+30*time.Second, err)
				return
			}
			took := at.Sub(since)
			mu.Lock()
			longest = max(longest, took)
			mu.Unlock()
			t.Logf("%s %s %.1fs after", c.Name, what, took.Seconds())
			if took > want {
				t.Errorf("%s %s %s after; want within %s", c.Name, what, took.Round(100*time.Millisecond), want)
			}
		}()
	}
	wg.Wait()
	return longest
}

// until polls cluster name on the hub until cond holds.
func until(t testing.TB, timeout time.Duration, what string, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) {
	t.Helper()
	if _, err := untilErr(timeout, cond, env, name); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// untilErr polls cluster name on the hub until cond holds, and returns
// when it did.
func untilErr(timeout time.Duration, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
		at = time.Now()
		return err == nil && cond(&c), client.IgnoreNotFound(err)
	})
	return at, err
}
