package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/testenv"
)

// The network between the hub and an agent is cut for 60 s (a TCP proxy in
// between, on the agent endpoint and the apiserver, that the test stops and
// starts): the cluster turns Disconnected within 3 heartbeats, and within 2
// heartbeats of the heal it is Healthy again and holds a policy created
// during the cut. The hub publishes the proxy as its agent endpoint with
// --agent-advertise-address, as it would a load balancer's address.
func TestNetworkCutAndHeal(t *testing.T) {
	const (
		name     = "cut-1"
		interval = 2 * time.Second
		cut      = 60 * time.Second
	)
	port, err := datadir.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := testenv.NewTCPProxy("127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(endpoint.Close)
	env := testenv.New(t, testenv.Options{Clusters: 1, Nodes: 1, HubArgs: []string{"--agent-port", strconv.Itoa(port), "--agent-advertise-address", endpoint.Addr}})
	hubURL, err := url.Parse(env.Hub.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	apiserver, err := testenv.NewTCPProxy("127.0.0.1:0", hubURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apiserver.Close)
	ctx := context.Background()

	// The agent reaches the hub only through the proxies.
	boot, err := attach.Attach(ctx, env.Hub.Client, env.Hub.Config, attach.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(boot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + apiserver.Addr
	}
	dir := filepath.Join(env.Dir, "agent-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(dir, "bootstrap.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, bootPath); err != nil {
		t.Fatal(err)
	}
	agent := testenv.NewProcess("agent-"+name, dir, "", "agent", "--cluster-kubeconfig", env.Clusters[0].Kubeconfig,
		"--data-dir", dir, "--bootstrap-kubeconfig", bootPath, "--heartbeat-interval", interval.String())
	if err := agent.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Stop)
	until(t, time.Minute, name+" Healthy", func(c *fv1.Cluster) bool { return c.Status.Health == fv1.HealthHealthy }, env, name)

	endpoint.Cut()
	apiserver.Cut()
	cutAt := time.Now()
	disconnected := until(t, 3*interval+5*time.Second, name+" Disconnected", func(c *fv1.Cluster) bool { return c.Status.Health == fv1.HealthDisconnected }, env, name)
	t.Logf("Disconnected %.1fs after the cut (%.1f heartbeats)", disconnected.Sub(cutAt).Seconds(), disconnected.Sub(cutAt).Seconds()/interval.Seconds())
	// The hub's rule is 3 missed intervals, checked every second.
	if d := disconnected.Sub(cutAt); d > 3*interval+1500*time.Millisecond {
		t.Errorf("Disconnected %s after the cut; want within 3 heartbeats (%s) and the hub's 1 s check", d, 3*interval)
	}

	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "made-during-the-cut"}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "cut"}}},
	}}
	if err := env.Hub.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(cutAt.Add(cut)))

	if err := endpoint.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := apiserver.Heal(); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	// A heartbeat stamped in a second after the heal's is the new connection's.
	fresh := healAt.Truncate(time.Second).Add(time.Second)
	healthy := until(t, 4*interval+5*time.Second, name+" Healthy after the heal", func(c *fv1.Cluster) bool {
		hb := c.Status.LastHeartbeatTime
		return c.Status.Health == fv1.HealthHealthy && hb != nil && !hb.Time.Before(fresh)
	}, env, name)
	member, err := kubernetes.NewForConfig(env.Clusters[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	var applied time.Time
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 4*interval+5*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := member.RbacV1().ClusterRoleBindings().Get(ctx, policy.ObjectName(p.Name), metav1.GetOptions{})
		applied = time.Now()
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("the policy made during the cut never reached the member: %v", err)
	}
	t.Logf("after the heal: Healthy in %.1fs, the policy made during the cut applied in %.1fs", healthy.Sub(healAt).Seconds(), applied.Sub(healAt).Seconds())
	// Within 2 heartbeats, and the second of the heartbeat's stamp.
	for what, at := range map[string]time.Time{"Healthy": healthy, "the policy applied": applied} {
		if d := at.Sub(healAt); d > 2*interval+time.Second {
			t.Errorf("%s %s after the heal; want within 2 heartbeats (%s)", what, d, 2*interval)
		}
	}
}

// until polls cluster name on the hub until cond holds, and returns when it did.
func until(t *testing.T, timeout time.Duration, what string, cond func(*fv1.Cluster) bool, env *testenv.Env, name string) time.Time {
	t.Helper()
	var at time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		at = time.Now()
		return err == nil && cond(&c), err
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
	return at
}
