package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/testenv"
)

// TestTwoHubsFailOver runs two hubs on a three-member etcd: one leads and
// serves the agents, the other stands by. Agents learn both from hub info.
// When the leader is killed with SIGKILL, the other takes over: every
// cluster reports to it (Healthy, with a report it stored) and a policy
// created after the kill reaches every member, with nothing made before
// lost. The test logs how long each took; the target is 15 s. An agent
// started while the hub its kubeconfig names is down finds the other. The
// killed hub, started again, stands by.
func TestTwoHubsFailOver(t *testing.T) {
	const interval = 2 * time.Second
	env := testenv.New(t, testenv.Options{NoHub: true, Clusters: 2, Nodes: 1})
	_, etcd := testenv.EtcdCluster(t, filepath.Join(env.Dir, "etcd"), 3)
	var hubs []*testenv.Process
	ports := map[int]*testenv.Process{} // agent endpoint port → hub
	for i := 1; i <= 2; i++ {
		port, err := datadir.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(env.Dir, fmt.Sprintf("hub-%d", i))
		h := testenv.NewProcess(fmt.Sprintf("hub-%d", i), dir, filepath.Join(dir, "admin.kubeconfig"), "hub", "--data-dir", dir,
			"--etcd-servers", strings.Join(etcd, ","), "--agent-port", strconv.Itoa(port))
		if err := h.Run(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Stop)
		hubs = append(hubs, h)
		ports[port] = h
	}
	env.Hub = hubs[0]
	var agents []*testenv.Process
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range agents {
				b, _ := os.ReadFile(filepath.Join(a.Dir, "logs", "agent.log"))
				t.Logf("%s's log, last lines:\n%s", a.Name, b[max(0, len(b)-3000):])
			}
		}
	})
	for _, c := range env.Clusters {
		agents = append(agents, startAgent(t, env, c, "", "--heartbeat-interval", interval.String()))
		until(t, time.Minute, c.Name+" Healthy", func(cl *fv1.Cluster) bool { return cl.Status.Health == fv1.HealthHealthy }, env, c.Name)
	}
	before := orgAccessPolicy("before-failover", "alice")
	if err := env.Hub.Client.Create(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.Clusters {
		if _, err := waitBinding(c, before, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	leader := leadingHub(t, env.Hub.Client, ports, nil)
	standby := hubs[0]
	if standby == leader {
		standby = hubs[1]
	}
	t.Logf("%s leads; the agents' kubeconfigs name hub-1's apiserver", leader.Name)
	killed := time.Now()
	leader.Kill()
	env.Hub = standby
	after := orgAccessPolicy("after-failover", "bob")
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := standby.Client.Create(ctx, after)
		return err == nil || apierrors.IsAlreadyExists(err), nil
	}); err != nil {
		t.Fatalf("the standby hub's API did not take a policy after the leader's kill: %v", err)
	}
	// A report stamped in the second after the kill's was taken by the
	// standby: the leader was dead by then. A heartbeat time is written
	// only every few minutes; the policy created after the kill has every
	// agent report once.
	heard := killed.Truncate(time.Second).Add(time.Second)
	var wg sync.WaitGroup
	for _, c := range env.Clusters {
		wg.Add(2)
		go func() {
			defer wg.Done()
			at, err := untilErr(time.Minute, func(cl *fv1.Cluster) bool {
				hb, p := cl.Status.LastHeartbeatTime, cl.Status.Policies
				reported := hb != nil && !hb.Time.Before(heard) || p != nil && p.LastChangeTime != nil && !p.LastChangeTime.Time.Before(heard)
				return cl.Status.Health == fv1.HealthHealthy && reported
			}, env, c.Name)
			if err != nil {
				t.Errorf("%s not Healthy on the standby hub within a minute of the leader's kill: %v", c.Name, err)
				return
			}
			t.Logf("%s: Healthy with a report the new leader stored %.1fs after the kill", c.Name, at.Sub(killed).Seconds())
		}()
		go func() {
			defer wg.Done()
			at, err := waitBinding(c, after, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			t.Logf("%s: a policy created after the kill applied %.1fs after it", c.Name, at.Sub(killed).Seconds())
			if _, err := waitBinding(c, before, time.Second); err != nil {
				t.Errorf("made before the failover, lost after it: %v", err)
			}
		}()
	}
	wg.Wait()
	leadingHub(t, standby.Client, ports, standby)

	// An agent started while the hub its kubeconfig names is down finds
	// the other, which it learnt of from hub info.
	if leader == hubs[0] {
		agents[0].Kill()
		restarted := time.Now()
		// Ready means a heartbeat was answered.
		if err := agents[0].Run(); err != nil {
			t.Fatalf("the agent, started again while %s is down: %v", leader.Name, err)
		}
		t.Logf("cluster-1's agent, started again while %s is down, heartbeating to %s in %.1fs", leader.Name, standby.Name, time.Since(restarted).Seconds())
	} else {
		t.Logf("hub-2 led: the agents' kubeconfigs name the surviving hub, so no agent is started against a dead one")
	}

	// The killed hub comes back as a standby: the leader stays.
	if err := leader.Run(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)
	leadingHub(t, standby.Client, ports, standby)
}

// leadingHub waits until hub info names a leader, want if set, and lists
// every hub; it returns the leader. The leader publishes its own agent
// endpoint.
func leadingHub(t *testing.T, cl client.Client, ports map[int]*testenv.Process, want *testenv.Process) *testenv.Process {
	t.Helper()
	var leader *testenv.Process
	var listed int
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var cm corev1.ConfigMap
		if err := cl.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &cm); err != nil {
			return false, nil
		}
		listed = len(heartbeat.Hubs(cm.Data))
		u, err := url.Parse(cm.Data["heartbeatURL"])
		if err != nil {
			return false, err
		}
		port, _ := strconv.Atoi(u.Port())
		leader = ports[port]
		return leader != nil && (want == nil || leader == want) && listed == len(ports), nil
	})
	if err != nil {
		name := "none"
		if leader != nil {
			name = leader.Name
		}
		t.Fatalf("hub info: leader %s (want %v), %d hubs listed (want %d): %v", name, want != nil, listed, len(ports), err)
	}
	return leader
}

func orgAccessPolicy(name, user string) *fv1.Policy {
	return &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: user}}}}}
}

// waitBinding waits until member c holds the binding of access policy p,
// and returns when it did.
func waitBinding(c *testenv.Process, p *fv1.Policy, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var b rbacv1.ClusterRoleBinding
		err := c.Client.Get(ctx, client.ObjectKey{Name: policy.ObjectName(p.Name)}, &b)
		at = time.Now()
		return err == nil && len(b.Subjects) == 1 && b.Subjects[0].Name == p.Spec.Access.Subjects[0].Name, nil
	})
	if err != nil {
		return at, fmt.Errorf("%s: policy %s not applied within %s", c.Name, p.Name, timeout)
	}
	return at, nil
}
