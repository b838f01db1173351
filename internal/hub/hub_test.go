package hub_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{Clusters: 1, Nodes: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

func newCluster(name, group string) *fv1.Cluster {
	return &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterSpec{Group: group}}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestAdminKubeconfigIsVerifiedAndRBACIsOn(t *testing.T) {
	cfg := env.Hub.Config
	if cfg.Insecure || len(cfg.CAData) == 0 {
		t.Fatalf("admin kubeconfig must verify the server: insecure=%v ca=%d bytes", cfg.Insecure, len(cfg.CAData))
	}
	ctx := context.Background()

	// Anonymous requests are not authorised to read Flotilla's API.
	anon := rest.AnonymousClientConfig(cfg)
	anonClient, err := client.New(anon, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	err = anonClient.List(ctx, &fv1.ClusterList{})
	if !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous list clusters: want forbidden, got %v", err)
	}

	// A user the hub's CA vouches for, but with no role, is forbidden by RBAC.
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.Hub.Dir, "pki"), "ca", "unused")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Client(t.TempDir(), "nobody", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	user := rest.AnonymousClientConfig(cfg)
	user.CertFile, user.KeyFile = pair.CertFile, pair.KeyFile
	userClient, err := client.New(user, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := userClient.List(ctx, &fv1.ClusterList{}); !apierrors.IsForbidden(err) {
		t.Fatalf("user without role listing clusters: want forbidden, got %v", err)
	}

	// A server certificate not signed by the kubeconfig's CA is refused.
	wrong := rest.CopyConfig(cfg)
	wrong.CAData = ca.CertPEM()[:0]
	other, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "other")
	if err != nil {
		t.Fatal(err)
	}
	wrong.CAData = other.CertPEM()
	wrongClient, err := client.New(wrong, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrongClient.List(ctx, &fv1.ClusterList{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client trusting another CA: want a certificate error, got %v", err)
	}
}

func TestDefaultsExist(t *testing.T) {
	ctx := context.Background()
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "default"}, &fv1.ClusterGroup{}); err != nil {
		t.Errorf("default cluster group: %v", err)
	}
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "default"}, &fv1.Workspace{}); err != nil {
		t.Errorf("default workspace: %v", err)
	}
	// The embedded etcd is the hub's alone: it elects no leader.
	lease := client.ObjectKey{Namespace: hub.SystemNamespace, Name: "flotilla-hub"}
	if err := env.Hub.Client.Get(ctx, lease, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("the embedded hub's leader lease: want none, got %v", err)
	}
}

func TestAPIValidation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		obj     client.Object
		wantErr string
	}{
		{"name not DNS-1123", newCluster("Prod_1", ""), "DNS-1123"},
		{"name too long", newCluster(strings.Repeat("a", 56), ""), "at most 55"},
		{"bad group", newCluster("bad-group", "No_Such"), "spec.group"},
		{"description too long", &fv1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Spec: fv1.ClusterGroupSpec{Description: strings.Repeat("x", 1025)}}, "spec.description"},
		{"bad workspace name", &fv1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "a.b"}}, "DNS-1123"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Hub.Client.Create(ctx, tc.obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want invalid mentioning %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestClusterDefaultsAndGroupCounts(t *testing.T) {
	ctx := context.Background()
	c := newCluster("counted", "")
	if err := env.Hub.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Hub.Client.Delete(ctx, c) })
	if c.Spec.Group != "default" {
		t.Errorf("spec.group defaulted to %q, want default", c.Spec.Group)
	}
	eventually(t, 30*time.Second, "cluster status initialised", func(ctx context.Context) (bool, error) {
		var got fv1.Cluster
		if err := env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(c), &got); err != nil {
			return false, err
		}
		return got.Status.Health == fv1.HealthUnknown && len(got.Status.Conditions) > 0, nil
	})
	eventually(t, 30*time.Second, "default group counts the cluster", func(ctx context.Context) (bool, error) {
		var g fv1.ClusterGroup
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "default"}, &g); err != nil {
			return false, err
		}
		return g.Status.Clusters >= 1, nil
	})

	// Plain kubectl shows the printer columns.
	out, err := exec.Command("kubectl", "--kubeconfig", env.Hub.Kubeconfig, "get", "clusters").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get clusters: %v\n%s", err, out)
	}
	header := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	if strings.Join(header, " ") != "NAME GROUP HEALTH VERSION NODES AGE" {
		t.Errorf("kubectl get clusters header = %v", header)
	}
	if !strings.Contains(string(out), "counted") || !strings.Contains(string(out), "Unknown") {
		t.Errorf("kubectl get clusters:\n%s", out)
	}
}

func TestRestartKeepsObjectsAndStopsOnSignal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hub")
	h := testenv.NewProcess("hub-restart", dir, filepath.Join(dir, "admin.kubeconfig"), "hub", "--data-dir", dir)
	if err := h.Run(); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := context.Background()
	if err := h.Client.Create(ctx, newCluster("survivor", "")); err != nil {
		t.Fatal(err)
	}
	kubeconfig, _ := os.ReadFile(h.Kubeconfig)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		start := time.Now()
		if err := syscall.Kill(h.PID(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.Done():
			t.Logf("stopped %v after %s", sig, time.Since(start))
		case <-time.After(10 * time.Second):
			t.Fatalf("hub still running 10s after %v", sig)
		}
		if err := h.Run(); err != nil {
			t.Fatal(err)
		}
		var got fv1.Cluster
		if err := h.Client.Get(ctx, client.ObjectKey{Name: "survivor"}, &got); err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if after, _ := os.ReadFile(h.Kubeconfig); string(after) != string(kubeconfig) {
			t.Errorf("admin.kubeconfig changed across restart")
		}
	}
}

// The etcd member killed is the leader: requests it had in flight wait out
// etcd's leader-failure timeout (7 s), longer than the hub may go without
// renewing its lease, and the hub must keep serving all the same.
func TestExternalEtcdClusterSurvivesMemberLoss(t *testing.T) {
	base := t.TempDir()
	procs, clients := testenv.EtcdCluster(t, base, 3)

	dir := filepath.Join(base, "hub")
	h := testenv.NewProcess("hub-etcd", dir, filepath.Join(dir, "admin.kubeconfig"), "hub", "--data-dir", dir, "--etcd-servers", strings.Join(clients, ","))
	if err := h.Run(); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := context.Background()
	if err := h.Client.Create(ctx, newCluster("before", "")); err != nil {
		t.Fatal(err)
	}

	procs[etcdLeader(t, clients)].Kill()
	killed := time.Now()
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		// Each try on its own clock, so that the last says what failed.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		last = h.Client.Create(ctx, newCluster("after", ""))
		return last == nil || apierrors.IsAlreadyExists(last), nil
	}); err != nil {
		t.Fatalf("writes with one etcd member down: %v (last: %v); the hub's log:\n%s", err, last, h.LogTail(6000))
	}
	var list fv1.ClusterList
	if err := h.Client.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("want clusters before and after, got %d", len(list.Items))
	}
	// Past the lease's renewal deadline, the hub still runs.
	select {
	case <-h.Done():
		t.Fatalf("the hub stopped after the etcd leader was killed:\n%s", h.LogTail(6000))
	case <-time.After(time.Until(killed.Add(12 * time.Second))):
	}
}

// etcdLeader is the index of the leader among an etcd cluster's clients.
func etcdLeader(t *testing.T, clients []string) int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: clients, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, c := range clients {
		st, err := cli.Status(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("the etcd cluster has no leader")
	return 0
}

func TestHostModeOnExistingCluster(t *testing.T) {
	host := env.Clusters[0]
	dir := filepath.Join(t.TempDir(), "hub")
	h := testenv.NewProcess("hub-host", dir, host.Kubeconfig, "hub", "--data-dir", dir, "--kubeconfig", host.Kubeconfig)
	if err := h.Run(); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := context.Background()
	var g fv1.ClusterGroup
	if err := host.Client.Get(ctx, client.ObjectKey{Name: "default"}, &g); err != nil {
		t.Fatalf("default group on host cluster: %v", err)
	}
	if err := host.Client.Create(ctx, newCluster("hosted", "")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "controllers run on the host cluster", func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		if err := host.Client.Get(ctx, client.ObjectKey{Name: "hosted"}, &c); err != nil {
			return false, err
		}
		return c.Status.Health == fv1.HealthUnknown, nil
	})
	var ns corev1.Namespace
	if err := host.Client.Get(ctx, client.ObjectKey{Name: hub.SystemNamespace}, &ns); err != nil {
		t.Errorf("system namespace on host: %v", err)
	}
	// Another hub could share the host cluster: this one leads.
	eventually(t, 30*time.Second, "leader election lease held", func(ctx context.Context) (bool, error) {
		var l coordinationv1.Lease
		if err := host.Client.Get(ctx, client.ObjectKey{Namespace: hub.SystemNamespace, Name: "flotilla-hub"}, &l); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
}

func TestPolicyValidation(t *testing.T) {
	ctx := context.Background()
	p := func(name string, spec fv1.PolicySpec) *fv1.Policy {
		return &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	org := fv1.PolicyScope{Organization: true}
	cases := []struct {
		name    string
		policy  *fv1.Policy
		wantErr string
	}{
		{"valid security on a group", p("ok-sec", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{ClusterGroup: "prod"}, Security: &fv1.SecuritySpec{Level: "baseline"}}), ""},
		{"valid registry on a workspace", p("ok-reg", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Workspace: "shop"}, ImageRegistry: &fv1.ImageRegistrySpec{BlockLatest: true}}), ""},
		{"no scope", p("no-scope", fv1.PolicySpec{Type: fv1.PolicyNetwork, Network: &fv1.NetworkSpec{Recipe: "deny-all"}}), "exactly one scope"},
		{"two scopes", p("two-scopes", fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true, Cluster: "a"}, Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "u"}}}}), "exactly one scope"},
		{"scope the type does not allow", p("sec-ws", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{Workspace: "shop"}, Security: &fv1.SecuritySpec{Level: "baseline"}}), "may be set on the organization, a cluster group or a cluster"},
		{"registry on a cluster", p("reg-cluster", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Cluster: "a"}, ImageRegistry: &fv1.ImageRegistrySpec{}}), "organization or a workspace"},
		{"unknown recipe", p("bad-recipe", fv1.PolicySpec{Type: fv1.PolicyNetwork, Scope: org, Network: &fv1.NetworkSpec{Recipe: "open-sesame"}}), "spec.network.recipe"},
		{"unknown preset", p("bad-preset", fv1.PolicySpec{Type: fv1.PolicyQuota, Scope: org, Quota: &fv1.QuotaSpec{Preset: "huge"}}), "spec.quota.preset"},
		{"missing type block", p("no-block", fv1.PolicySpec{Type: fv1.PolicyQuota, Scope: org}), "a quota policy needs spec.quota"},
		{"bad selector operator", p("bad-selector", fv1.PolicySpec{Type: fv1.PolicyNetwork, Scope: org, Network: &fv1.NetworkSpec{Recipe: "deny-all"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}}}}), "namespaceSelector expression"},
		{"CEL that does not compile", p("bad-cel", fv1.PolicySpec{Type: fv1.PolicyCustom, Scope: org, Custom: &fv1.CustomSpec{Expression: "object.spec.replicas <=", MatchKinds: []string{"apps/Deployment"}}}), "compil"},
		{"custom recipe without a spec", p("no-custom", fv1.PolicySpec{Type: fv1.PolicyNetwork, Scope: org, Network: &fv1.NetworkSpec{Recipe: "custom"}}), "spec.network.custom is set exactly when the recipe is custom"},
		{"security without level or rule", p("empty-sec", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: org, Security: &fv1.SecuritySpec{}}), "needs a level"},
		{"mutation with nothing to do", p("empty-mut", fv1.PolicySpec{Type: fv1.PolicyMutation, Scope: org, Mutation: &fv1.MutationSpec{}}), "needs addLabels"},
		{"mutation label invalid", p("bad-label", fv1.PolicySpec{Type: fv1.PolicyMutation, Scope: org, Mutation: &fv1.MutationSpec{AddLabels: map[string]string{"bad key!": "x"}}}), "spec.mutation.addLabels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Hub.Client.Create(ctx, tc.policy)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid policy rejected: %v", err)
				}
				env.Hub.Client.Delete(ctx, tc.policy)
				return
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want invalid mentioning %q, got %v", tc.wantErr, err)
			}
		})
	}
}
