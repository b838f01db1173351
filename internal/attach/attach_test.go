package attach_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/registration"
	"flotilla.dev/flotilla/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	// A small bound on an agent's namespaces lets a test reach it.
	env, err = testenv.Start(testenv.Options{Clusters: 2, Nodes: 1, HubArgs: []string{"--max-namespaces-per-cluster", strconv.Itoa(maxNamespaces)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// Heartbeats every second keep fault tests short; the protocol is the same.
const interval = "1s"

type agentRun struct {
	*testenv.Process
	boot string
}

// attachCluster attaches name to the hub and returns the bootstrap kubeconfig path.
func attachCluster(t *testing.T, name string, o attach.Options) string {
	t.Helper()
	o.Name = name
	boot, err := attach.Attach(context.Background(), env.Hub.Client, env.Hub.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.kubeconfig")
	if err := os.WriteFile(path, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newAgent describes an agent for member; run it with Run or Start.
func newAgent(t *testing.T, name string, member *testenv.Process, boot, dir string, extra ...string) *agentRun {
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "agent-"+name)
	}
	args := append([]string{"agent", "--cluster-kubeconfig", member.Kubeconfig, "--data-dir", dir, "--heartbeat-interval", interval}, extra...)
	if boot != "" {
		args = append(args, "--bootstrap-kubeconfig", boot)
	}
	a := &agentRun{Process: testenv.NewProcess("agent-"+name, dir, "", args...), boot: boot}
	t.Cleanup(a.Stop)
	return a
}

func getCluster(t *testing.T, name string) *fv1.Cluster {
	t.Helper()
	var c fv1.Cluster
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func waitHealth(t *testing.T, name string, timeout time.Duration, want ...fv1.Health) *fv1.Cluster {
	t.Helper()
	var c fv1.Cluster
	waitFor(t, timeout, fmt.Sprintf("cluster %s health in %v", name, want), func(ctx context.Context) (bool, error) {
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, h := range want {
			if c.Status.Health == h {
				return true, nil
			}
		}
		return false, nil
	})
	return &c
}

// attachAndRun attaches name, runs its agent against member and waits for Healthy.
func attachAndRun(t *testing.T, name string, member *testenv.Process) *agentRun {
	t.Helper()
	a := newAgent(t, name, member, attachCluster(t, name, attach.Options{}), "")
	if err := a.Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, name, 30*time.Second, fv1.HealthHealthy)
	return a
}

// registrations counts the certificate requests an agent submitted, from its log.
func registrations(t *testing.T, a *agentRun) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Dir, "logs", "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "submitted certificate request")
}

func agentCSRs(t *testing.T, name string) int {
	t.Helper()
	n, err := env.Hub.AgentCSRs(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAttachBecomesHealthyWithInventory(t *testing.T) {
	start := time.Now()
	a := attachAndRun(t, "alpha", env.Clusters[0])
	t.Logf("attach to Healthy: %s", time.Since(start))
	c := getCluster(t, "alpha")
	s := c.Status
	if s.KubernetesVersion != "v1.37.2" || s.Platform == "" || s.AgentVersion == "" {
		t.Errorf("version %q platform %q agent %q", s.KubernetesVersion, s.Platform, s.AgentVersion)
	}
	if s.Nodes.Total != 1 || s.Nodes.Ready != 1 || s.Capacity.CPU.String() != "4" || s.Allocatable.Memory.IsZero() {
		t.Errorf("nodes %+v capacity %+v allocatable %+v", s.Nodes, s.Capacity, s.Allocatable)
	}
	if s.Namespaces < 4 || s.Namespace != "cluster-alpha" || s.LastHeartbeatTime == nil {
		t.Errorf("namespaces %d hub namespace %q heartbeat %v", s.Namespaces, s.Namespace, s.LastHeartbeatTime)
	}
	for _, ct := range []string{fv1.ClusterConditionRegistered, fv1.ClusterConditionAgentConnected, fv1.ClusterConditionHealthy} {
		if cond := meta.FindStatusCondition(s.Conditions, ct); cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason == "" {
			t.Errorf("condition %s = %+v", ct, cond)
		}
	}
	if n := registrations(t, a); n != 1 {
		t.Errorf("alpha's agent submitted %d certificate requests, want 1", n)
	}
	// Its certificate in use, the request is deleted.
	waitFor(t, 10*time.Second, "alpha's used CSR deleted", func(context.Context) (bool, error) { return agentCSRs(t, "alpha") == 0, nil })
}

// With cluster A's agent identity, the hub's RBAC forbids touching B.
func TestAgentIdentityIsolation(t *testing.T) {
	a := attachAndRun(t, "iso-a", env.Clusters[0])
	attachAndRun(t, "iso-b", env.Clusters[1])
	cfg, err := kubeconfig.Load(filepath.Join(a.Dir, "hub.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	as, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// What A may do. It writes its Cluster's status only through its
	// stream, which attachAndRun saw turn the cluster Healthy.
	var cms corev1.ConfigMapList
	if err := as.List(ctx, &cms, client.InNamespace("cluster-iso-a")); err != nil {
		t.Errorf("reading own namespace: %v", err)
	}
	if err := as.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("reading hub info: %v", err)
	}

	// What A may not.
	var own, other fv1.Cluster
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "iso-a"}, &own); err != nil {
		t.Fatal(err)
	}
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "iso-b"}, &other); err != nil {
		t.Fatal(err)
	}
	ownPatch, otherPatch := client.MergeFrom(own.DeepCopy()), client.MergeFrom(other.DeepCopy())
	own.Status.Pods, other.Status.Pods = 999, 999
	forbidden := map[string]error{
		"write own status around the stream": as.Status().Patch(ctx, &own, ownPatch),
		"get B's Cluster":                    as.Get(ctx, client.ObjectKey{Name: "iso-b"}, &fv1.Cluster{}),
		"write B's status":                   as.Status().Patch(ctx, &other, otherPatch),
		"list all Clusters":                  as.List(ctx, &fv1.ClusterList{}),
		"read B's namespace":                 as.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("cluster-iso-b")),
		"read B's agent binding":             as.Get(ctx, client.ObjectKey{Namespace: "cluster-iso-b", Name: "flotilla-agent"}, &rbacv1.RoleBinding{}),
		"read the hub's other objects":       as.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(fv1.HubInfoNamespace)),
		"list Secrets in kube-system":        as.List(ctx, &corev1.SecretList{}, client.InNamespace("kube-system")),
		"list Secrets everywhere":            as.List(ctx, &corev1.SecretList{}),
		"update own spec":                    as.Update(ctx, &own),
		"create RBAC":                        as.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "x"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}),
	}
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want forbidden, got %v", what, err)
		}
	}
}

func TestKilledAgentDisconnectsAndRecoversWithoutNewRegistration(t *testing.T) {
	a := attachAndRun(t, "beta", env.Clusters[1])
	a.Kill()
	start := time.Now()
	c := waitHealth(t, "beta", 10*time.Second, fv1.HealthDisconnected)
	t.Logf("Disconnected %s after the agent died", time.Since(start))
	if cond := meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionAgentConnected); cond == nil || cond.Reason != "HeartbeatMissed" {
		t.Errorf("AgentConnected = %+v", cond)
	}

	restarted := newAgent(t, "beta", env.Clusters[1], "", a.Dir) // no bootstrap credential
	if err := restarted.Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, "beta", 10*time.Second, fv1.HealthHealthy)
	if n := registrations(t, restarted); n != 1 { // its log goes on from the first run's
		t.Errorf("restart registered again: %d CSRs", n)
	}
}

// An agent in a pod keeps its identity in a Secret of its cluster: a new
// pod, with an empty disk and a used bootstrap credential, carries on.
func TestAgentIdentityInSecretOutlivesItsDisk(t *testing.T) {
	member := env.Clusters[0]
	ctx := context.Background()
	if err := member.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ident"}}); err != nil {
		t.Fatal(err)
	}
	inSecret := []string{"--identity-secret", "ident/theta-identity"}
	first := newAgent(t, "theta", member, attachCluster(t, "theta", attach.Options{}), "", inSecret...)
	if err := first.Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, "theta", 30*time.Second, fv1.HealthHealthy)
	var s corev1.Secret
	if err := member.Client.Get(ctx, client.ObjectKey{Namespace: "ident", Name: "theta-identity"}, &s); err != nil || len(s.Data["kubeconfig"]) == 0 {
		t.Fatalf("identity Secret: %v", err)
	}
	first.Kill()

	second := newAgent(t, "theta-2", member, first.boot, "", inSecret...) // a fresh disk
	if err := second.Run(); err != nil {
		t.Fatalf("%v\n%s", err, second.Log())
	}
	waitHealth(t, "theta", 30*time.Second, fv1.HealthHealthy)
	if n := registrations(t, second); n != 0 {
		t.Errorf("the new agent registered again: %d CSRs", n)
	}
}

func TestReusedBootstrapCredentialIsRefused(t *testing.T) {
	first := attachAndRun(t, "gamma", env.Clusters[0])
	second := newAgent(t, "gamma-2", env.Clusters[0], first.boot, "")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("agent with a reused credential still running")
	}
	if !strings.Contains(second.Log(), "already used") {
		t.Errorf("agent output does not say why:\n%s", second.Log())
	}
	waitFor(t, 10*time.Second, "refusal in conditions", func(ctx context.Context) (bool, error) {
		c := getCluster(t, "gamma")
		cond := meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionBootstrapRefused)
		return cond != nil && cond.Reason == "BootstrapReused", nil
	})
	if c := getCluster(t, "gamma"); c.Status.Health != fv1.HealthHealthy {
		t.Errorf("the registered agent was disturbed: %s", c.Status.Health)
	}
	// The used token expires within the grace, not at the end of its TTL.
	var tokens corev1.SecretList
	if err := env.Hub.Client.List(context.Background(), &tokens, client.InNamespace(metav1.NamespaceSystem), client.MatchingLabels{fv1.LabelCluster: "gamma"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range tokens.Items {
		exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
		if err != nil || time.Until(exp) > registration.UsedGrace {
			t.Errorf("used token %s expires at %q, more than %s from now", s.Name, s.Data["expiration"], registration.UsedGrace)
		}
	}
	if len(tokens.Items) != 1 {
		t.Errorf("%d bootstrap tokens for gamma, want 1", len(tokens.Items))
	}
}

func TestExpiredBootstrapCredentialIsRefused(t *testing.T) {
	boot := attachCluster(t, "expired", attach.Options{TTL: time.Second})
	time.Sleep(2 * time.Second)
	a := newAgent(t, "expired", env.Clusters[0], boot, "")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("agent with an expired credential still running")
	}
	if !strings.Contains(a.Log(), "expired") {
		t.Errorf("agent output does not say why:\n%s", a.Log())
	}
	var seen []metav1.Condition
	defer func() {
		if t.Failed() {
			t.Logf("conditions: %+v\nhub log: %s", seen, env.Hub.Log())
		}
	}()
	waitFor(t, 10*time.Second, "expiry in conditions", func(ctx context.Context) (bool, error) {
		seen = getCluster(t, "expired").Status.Conditions
		cond := meta.FindStatusCondition(seen, fv1.ClusterConditionRegistered)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == "BootstrapExpired", nil
	})
}

func TestAttachBadInputLeavesNothing(t *testing.T) {
	ctx := context.Background()
	attachCluster(t, "taken", attach.Options{})
	count := func() (clusters, tokens int) {
		var cl fv1.ClusterList
		var s corev1.SecretList
		env.Hub.Client.List(ctx, &cl)
		env.Hub.Client.List(ctx, &s, client.InNamespace("kube-system"), client.HasLabels{fv1.LabelCluster})
		return len(cl.Items), len(s.Items)
	}
	c0, t0 := count()
	cases := []struct {
		name string
		o    attach.Options
		want string
	}{
		{"existing name", attach.Options{Name: "taken"}, "already exists"},
		{"not DNS-1123", attach.Options{Name: "Bad_Name"}, "DNS-1123"},
		{"too long", attach.Options{Name: strings.Repeat("a", 56)}, "at most 55"},
		{"unknown group", attach.Options{Name: "lost", Group: "nowhere"}, "cluster group \"nowhere\" does not exist"},
	}
	for _, tc := range cases {
		_, err := attach.Attach(ctx, env.Hub.Client, env.Hub.Config, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error with %q, got %v", tc.name, tc.want, err)
		}
	}
	if c1, t1 := count(); c1 != c0 || t1 != t0 {
		t.Errorf("bad input created objects: clusters %d→%d, tokens %d→%d", c0, c1, t0, t1)
	}
}

func TestAgentRetriesWhileHubIsDown(t *testing.T) {
	boot := attachCluster(t, "patient", attach.Options{})
	data, _ := os.ReadFile(boot)
	// Point the credential at a port nothing listens on.
	dead := strings.Replace(string(data), env.Hub.Config.Host, "https://127.0.0.1:1", 1)
	os.WriteFile(boot, []byte(dead), 0o600)
	a := newAgent(t, "patient", env.Clusters[0], boot, "")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	select {
	case <-a.Done():
		t.Fatalf("agent gave up on an unreachable hub:\n%s", a.Log())
	default:
	}
	logData, _ := os.ReadFile(filepath.Join(a.Dir, "logs", "agent.log"))
	if !strings.Contains(string(logData), "retrying") {
		t.Errorf("agent log does not say it retries:\n%s", logData)
	}
}

func TestDetachCleansClusterAndHub(t *testing.T) {
	ctx := context.Background()
	a := attachAndRun(t, "delta", env.Clusters[0])
	member := env.Clusters[0].Client
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flotilla-test-owned", Labels: map[string]string{"app.kubernetes.io/managed-by": "flotilla"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone"}},
	}
	if err := member.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	if err := attach.Detach(ctx, env.Hub.Client, "delta", false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Error("agent still running after detach")
	}
	if err := member.Get(ctx, client.ObjectKeyFromObject(crb), &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("Flotilla-owned binding left in the cluster: %v", err)
	}
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: fv1.AgentUser("delta")}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent ClusterRole left on the hub: %v", err)
	}
	waitFor(t, 30*time.Second, "hub namespace removed", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "cluster-delta"}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Stat(filepath.Join(a.Dir, "hub.kubeconfig")); !os.IsNotExist(err) {
		t.Errorf("agent kept its hub identity after detach")
	}
}

func TestForceDetachWithoutAgent(t *testing.T) {
	a := attachAndRun(t, "epsilon", env.Clusters[1])
	a.Kill()
	start := time.Now()
	if err := attach.Detach(context.Background(), env.Hub.Client, "epsilon", true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("force detach took %s", time.Since(start))
	err := attach.Detach(context.Background(), env.Hub.Client, "epsilon", false, time.Second)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("detaching again: %v", err)
	}
}

func TestMemberAPIServerDownThenBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "member")
	member := testenv.NewCluster(dir, "flaky", 1)
	if err := member.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Stop)
	attachAndRun(t, "flaky", member)
	member.Stop()
	c := waitHealth(t, "flaky", 30*time.Second, fv1.HealthUnhealthy, fv1.HealthDisconnected)
	t.Logf("with the member's apiserver down: %s %v", c.Status.Health, meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionHealthy))
	if err := member.Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, "flaky", 30*time.Second, fv1.HealthHealthy)
}

// Last: it restarts the shared hub.
func TestHubRestartLosesNothingAndAgentsReconnect(t *testing.T) {
	a := attachAndRun(t, "zeta", env.Clusters[1])
	env.Hub.Stop()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	c := waitHealth(t, "zeta", 30*time.Second, fv1.HealthHealthy)
	if cond := meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionRegistered); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("registration lost over restart: %+v", cond)
	}
	if n := registrations(t, a); n != 1 {
		t.Errorf("agent registered again after hub restart: %d CSRs", n)
	}
}
