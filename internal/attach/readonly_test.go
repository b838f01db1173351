package attach_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/controller"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/testenv"
)

// TestReadOnlyAttach attaches a cluster of its own read-only, as a user
// would: the manifest 'cluster attach --read-only' prints is applied to the
// member, and the agent runs with the manifest's ServiceAccount's token,
// so it holds exactly the grant its pod would. The member refuses it every
// write; it reports all the same; policies are reported not enforced and
// nothing of them reaches the member.
func TestReadOnlyAttach(t *testing.T) {
	ctx := context.Background()
	member := testenv.NewCluster(filepath.Join(t.TempDir(), "member"), "ro", 1)
	if err := member.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Stop)
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}

	help, err := exec.Command(bin, "cluster", "attach", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "--read-only") || !strings.Contains(string(help), "reported not enforced") {
		t.Errorf("cluster attach --help does not document --read-only: %v\n%s", err, help)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "cluster", "attach", "ro", "--read-only", "--hub-kubeconfig", env.Hub.Kubeconfig)
	cmd.Stderr = &stderr
	manifest, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster attach --read-only: %v\n%s", err, stderr.String())
	}
	if c := getCluster(t, "ro"); !c.Spec.ReadOnly {
		t.Fatalf("the Cluster is not read-only: %+v", c.Spec)
	}
	objs := decodeManifest(t, manifest)
	boot := checkReadOnlyManifest(t, objs)
	bootPath := filepath.Join(t.TempDir(), "bootstrap.kubeconfig")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	// Everything but the Deployment, which would need a real node.
	var apply []client.Object
	for _, o := range objs {
		if _, ok := o.(*appsv1.Deployment); !ok {
			apply = append(apply, o)
		}
	}
	if err := attach.Install(ctx, member.Config, apply, hub.Scheme()); err != nil {
		t.Fatal(err)
	}
	saCfg, saKubeconfig := serviceAccountKubeconfig(t, member, "flotilla-system", "flotilla-agent")

	t.Run("the member refuses the agent's ServiceAccount every write", func(t *testing.T) {
		as, err := kubernetes.NewForConfig(saCfg)
		if err != nil {
			t.Fatal(err)
		}
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		// Dry runs: RBAC judges them as the real thing, and should this
		// test fail, nothing changed.
		writes := map[string]error{}
		_, writes["create a ConfigMap in default"] = as.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
		_, writes["create a namespace"] = as.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, dry)
		writes["delete a namespace"] = as.CoreV1().Namespaces().Delete(ctx, "default", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		_, writes["label a namespace"] = as.CoreV1().Namespaces().Patch(ctx, "default", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		_, writes["create a pod (as a violation check would)"] = as.CoreV1().Pods("default").Create(ctx, pod("default", "x", "x/y:1", nil), dry)
		_, writes["create a ClusterRoleBinding"] = as.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "x"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "x"}}}, dry)
		_, writes["create a ResourceQuota"] = as.CoreV1().ResourceQuotas("default").Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, dry)
		_, writes["create a Secret in its own namespace"] = as.CoreV1().Secrets("flotilla-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, dry)
		writes["delete its own namespace"] = as.CoreV1().Namespaces().Delete(ctx, "flotilla-system", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		_, writes["read Secrets in kube-system"] = as.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
		_, writes["read its bootstrap Secret"] = as.CoreV1().Secrets("flotilla-system").Get(ctx, "flotilla-bootstrap", metav1.GetOptions{})
		_, writes["impersonate"] = impersonating(t, saCfg).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		for what, err := range writes {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s: want 403 Forbidden, got %v", what, err)
			}
		}
		if _, err := as.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list pods: %v", err)
		}
		w, err := as.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{TimeoutSeconds: ptr.To[int64](1)})
		if err != nil {
			t.Errorf("watch pods: %v", err)
		} else {
			for range w.ResultChan() { // ends after a second
			}
		}
		if _, err := as.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list nodes: %v", err)
		}
		if _, err := as.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list namespaces: %v", err)
		}
		if _, err := as.CoreV1().Secrets("flotilla-system").Get(ctx, "flotilla-agent-identity", metav1.GetOptions{}); err != nil {
			t.Errorf("read its identity Secret: %v", err)
		}
	})

	a := newAgent(t, "ro", &testenv.Process{Kubeconfig: saKubeconfig}, bootPath, "",
		"--identity-secret", "flotilla-system/flotilla-agent-identity", "--read-only")
	if err := a.Run(); err != nil {
		t.Fatalf("%v\n%s", err, a.Log())
	}
	c := waitHealth(t, "ro", 30*time.Second, fv1.HealthHealthy)

	t.Run("healthy with inventory", func(t *testing.T) {
		s := c.Status
		if s.KubernetesVersion == "" || s.Platform == "" || s.Nodes.Total != 1 || s.Nodes.Ready != 1 || s.Capacity.CPU.IsZero() || s.Namespaces < 5 {
			t.Errorf("version %q platform %q nodes %+v capacity %+v namespaces %d", s.KubernetesVersion, s.Platform, s.Nodes, s.Capacity, s.Namespaces)
		}
		var sec corev1.Secret
		if err := member.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-agent-identity"}, &sec); err != nil || len(sec.Data["kubeconfig"]) == 0 {
			t.Errorf("identity Secret not written: %v", err)
		}
		// Namespaces made in the cluster reach the hub as for any cluster.
		mustCreateNamespace(t, member, "ro-web")
		waitFor(t, 15*time.Second, "ro-web on the hub", func(ctx context.Context) (bool, error) {
			return env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: "cluster-ro", Name: "ro-web"}, &fv1.ClusterNamespace{}) == nil, nil
		})
		if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, "ro", "ro-new", ""); err == nil || !strings.Contains(err.Error(), "attached read-only") {
			t.Errorf("creating a namespace through the hub: %v", err)
		}
	})

	two := int64(2)
	createPolicy(t, "ro-view", fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Cluster: "ro"},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "alice"}}}})
	createPolicy(t, "ro-quota", fv1.PolicySpec{Type: fv1.PolicyQuota, Scope: fv1.PolicyScope{Cluster: "ro"}, Quota: &fv1.QuotaSpec{Pods: &two}})
	createPolicy(t, "ro-baseline", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{Cluster: "ro"}, Security: &fv1.SecuritySpec{Level: "baseline", DisallowPrivileged: true}})

	t.Run("policies reported not enforced, nothing of them in the member", func(t *testing.T) {
		want := map[string]fv1.PolicyType{"ro-view": fv1.PolicyAccess, "ro-quota": fv1.PolicyQuota, "ro-baseline": fv1.PolicySecurity}
		waitNotEnforced(t, "ro", want)
		c := getCluster(t, "ro")
		if p := c.Status.Policies; p.Synced != "False" || p.Objects != 0 {
			t.Errorf("policy report synced %q objects %d", p.Synced, p.Objects)
		}
		for name := range want {
			waitFor(t, 15*time.Second, "policy "+name+" Enforced=False", func(ctx context.Context) (bool, error) {
				var p fv1.Policy
				if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
					return false, err
				}
				cond := meta.FindStatusCondition(p.Status.Conditions, controller.PolicyConditionEnforced)
				return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == fv1.ReasonReadOnlyAttach && strings.Contains(cond.Message, "ro") && p.Status.Clusters == 1, nil
			})
		}
		checkNothingOfPolicies(t, member)
		// Nothing the agent did was refused: it tried no write.
		if log := agentLog(t, a); strings.Contains(strings.ToLower(log), "forbidden") {
			t.Errorf("the agent met a refusal of its cluster:\n%s", log)
		}
		out, err := exec.Command(bin, "policy", "insights", "--cluster", "ro", "--hub-kubeconfig", env.Hub.Kubeconfig).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "NotEnforced") || !strings.Contains(string(out), "ro-quota") {
			t.Errorf("flotilla policy insights: %v\n%s", err, out)
		}
	})

	t.Run("the report follows the policies", func(t *testing.T) {
		if err := env.Hub.Client.Delete(ctx, &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "ro-quota"}}); err != nil {
			t.Fatal(err)
		}
		waitNotEnforced(t, "ro", map[string]fv1.PolicyType{"ro-view": fv1.PolicyAccess, "ro-baseline": fv1.PolicySecurity})
	})

	t.Run("access through the hub is refused with the reason", func(t *testing.T) {
		rc := env.Hub.Clientset.CoreV1().RESTClient()
		var last error
		defer func() {
			if t.Failed() {
				t.Logf("last answer: %v", last)
			}
		}()
		waitFor(t, 20*time.Second, "refusal through the hub's access point", func(ctx context.Context) (bool, error) {
			// Do, not DoRaw, which does not read a refusal's Status.
			last = rc.Get().AbsPath("/apis/proxy.flotilla.dev/v1alpha1/clusters/ro/proxy/api/v1/namespaces").Do(ctx).Error()
			if last == nil {
				t.Fatal("a request through the hub reached a read-only cluster")
			}
			return apierrors.IsForbidden(last) && strings.Contains(last.Error(), "attached read-only"), nil
		})
	})

	t.Run("readOnly cannot change", func(t *testing.T) {
		c := getCluster(t, "ro")
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.ReadOnly = false
		err := env.Hub.Client.Patch(ctx, c, patch)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.readOnly is set when a cluster is attached") {
			t.Errorf("clearing readOnly: %v", err)
		}
		out, err := exec.Command("kubectl", "--kubeconfig", env.Hub.Kubeconfig, "patch", "clusters.flotilla.dev", "ro", "--type", "json",
			"-p", `[{"op":"remove","path":"/spec/readOnly"}]`).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "cannot change: to change what its agent may do, detach the cluster and attach it again") {
			t.Errorf("kubectl removing readOnly: %v\n%s", err, out)
		}
		attachCluster(t, "ro-flip", attach.Options{})
		t.Cleanup(func() { attach.Detach(context.Background(), env.Hub.Client, "ro-flip", true, 30*time.Second) })
		out, err = exec.Command("kubectl", "--kubeconfig", env.Hub.Kubeconfig, "patch", "clusters.flotilla.dev", "ro-flip", "--type", "merge",
			"-p", `{"spec":{"readOnly":true}}`).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "spec.readOnly is set when a cluster is attached") {
			t.Errorf("kubectl setting readOnly on a cluster attached with full rights: %v\n%s", err, out)
		}
	})

	t.Run("detach removes nothing from the member and says so", func(t *testing.T) {
		out, err := exec.Command(bin, "cluster", "detach", "ro", "--hub-kubeconfig", env.Hub.Kubeconfig, "--timeout", "30s").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "attached read-only") || !strings.Contains(string(out), "kubectl delete namespace flotilla-system") {
			t.Errorf("cluster detach: %v\n%s", err, out)
		}
		select {
		case <-a.Done():
		case <-time.After(15 * time.Second):
			t.Error("agent still running after detach")
		}
		if err := member.Client.Get(ctx, client.ObjectKey{Name: "flotilla-system"}, &corev1.Namespace{}); err != nil {
			t.Errorf("the agent's namespace: %v", err)
		}
		if err := member.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-agent-identity"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("the agent kept its identity after detach: %v", err)
		}
	})
}

// TestReadOnlyClusterWithAdminAgent: the hub says a cluster is read-only,
// so an agent that holds more (as a process with an admin kubeconfig does,
// told nothing) still writes nothing there.
func TestReadOnlyClusterWithAdminAgent(t *testing.T) {
	ctx := context.Background()
	m := env.Clusters[1]
	a := newAgent(t, "ro-admin", m, attachCluster(t, "ro-admin", attach.Options{ReadOnly: true}), "")
	if err := a.Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, "ro-admin", 30*time.Second, fv1.HealthHealthy)
	createPolicy(t, "ro-admin-view", fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Cluster: "ro-admin"},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "dave"}}}})
	waitNotEnforced(t, "ro-admin", map[string]fv1.PolicyType{"ro-admin-view": fv1.PolicyAccess})
	if err := m.Client.Get(ctx, client.ObjectKey{Name: policy.ObjectName("ro-admin-view")}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the policy's binding is in the member: %v", err)
	}
	if log := agentLog(t, a); !strings.Contains(log, "the hub says the cluster is attached read-only") {
		t.Errorf("the agent does not say it is read-only:\n%s", log)
	}
	// A namespace put on the hub around the CLI's refusal is not created.
	cn := &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Name: "ro-admin-new", Namespace: "cluster-ro-admin", Finalizers: []string{fv1.NamespaceFinalizer}},
		Spec: fv1.ClusterNamespaceSpec{Workspace: fv1.DefaultName}}
	if err := env.Hub.Client.Create(ctx, cn); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // a few heartbeats
	if err := m.Client.Get(ctx, client.ObjectKey{Name: "ro-admin-new"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("a namespace was created in the member: %v", err)
	}
	env.Hub.Client.Delete(ctx, cn)
	if err := attach.Detach(ctx, env.Hub.Client, "ro-admin", false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// decodeManifest reads a multi-document YAML manifest into objects.
func decodeManifest(t *testing.T, manifest []byte) []client.Object {
	t.Helper()
	dec := serializer.NewCodecFactory(hub.Scheme()).UniversalDeserializer()
	var out []client.Object
	for _, doc := range strings.Split(string(manifest), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		o, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("manifest document: %v\n%s", err, doc)
		}
		out = append(out, o.(client.Object))
	}
	return out
}

// checkReadOnlyManifest checks that the manifest grants the agent nothing
// but reads cluster-wide, and returns its bootstrap kubeconfig.
func checkReadOnlyManifest(t *testing.T, objs []client.Object) []byte {
	t.Helper()
	var boot []byte
	roles := map[string]*rbacv1.ClusterRole{}
	var bindings []*rbacv1.ClusterRoleBinding
	for _, o := range objs {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, o)
		case *rbacv1.Role:
			for _, r := range o.Rules {
				if !slices.Equal(r.Resources, []string{"secrets"}) || !slices.Equal(r.ResourceNames, []string{"flotilla-agent-identity"}) || slices.Contains(r.Verbs, "create") {
					t.Errorf("Role %s/%s grants %+v", o.Namespace, o.Name, r)
				}
			}
		case *corev1.Secret:
			if o.Name == "flotilla-bootstrap" {
				boot = []byte(o.StringData["kubeconfig"])
			}
		case *appsv1.Deployment:
			args := o.Spec.Template.Spec.Containers[0].Args
			if !slices.Contains(args, "--read-only") || !slices.Contains(args, "--identity-secret=flotilla-system/flotilla-agent-identity") || o.Spec.Template.Spec.ServiceAccountName != "flotilla-agent" {
				t.Errorf("Deployment runs %v as %q", args, o.Spec.Template.Spec.ServiceAccountName)
			}
		}
	}
	if len(bindings) != 1 || bindings[0].RoleRef.Name != fv1.ReadOnlyAgentRole || roles[fv1.ReadOnlyAgentRole] == nil {
		t.Fatalf("bindings %+v, roles %v: want one binding to %s", bindings, roles, fv1.ReadOnlyAgentRole)
	}
	for _, r := range roles[fv1.ReadOnlyAgentRole].Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("the read-only ClusterRole grants %s: %+v", v, r)
			}
		}
		if slices.Contains(r.Resources, "*") || slices.Contains(r.Resources, "secrets") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("the read-only ClusterRole reads too much: %+v", r)
		}
	}
	if len(boot) == 0 {
		t.Fatal("no bootstrap kubeconfig in the manifest")
	}
	return boot
}

// serviceAccountKubeconfig returns a client config, and a kubeconfig file,
// with a token of the ServiceAccount ns/name of member: what its pod holds.
func serviceAccountKubeconfig(t *testing.T, member *testenv.Process, ns, name string) (*rest.Config, string) {
	t.Helper()
	tr, err := member.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := member.Config.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(member.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["member"] = &clientcmdapi.Cluster{Server: member.Config.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["agent"] = &clientcmdapi.Context{Cluster: "member", AuthInfo: "agent"}
	kc.CurrentContext = "agent"
	path := filepath.Join(t.TempDir(), "agent.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: member.Config.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
	return cfg, path
}

// impersonating is a client of cfg that acts as the member's admin.
func impersonating(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "flotilla-admin", Groups: []string{"system:masters"}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// waitNotEnforced waits until cluster reports exactly the policies in want
// not enforced, for its being attached read-only.
func waitNotEnforced(t *testing.T, cluster string, want map[string]fv1.PolicyType) {
	t.Helper()
	var last []fv1.Insight
	waitFor(t, 30*time.Second, "policies reported not enforced in "+cluster, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil || c.Status.Policies == nil {
			return false, err
		}
		last = c.Status.Policies.Insights
		got := map[string]fv1.PolicyType{}
		for _, in := range last {
			if in.Kind != fv1.InsightNotEnforced || in.Reason != fv1.ReasonReadOnlyAttach || in.Message != policy.ReadOnlyMessage(cluster) {
				return false, nil
			}
			got[in.Policy] = in.Type
		}
		if len(got) != len(want) {
			return false, nil
		}
		for name, typ := range want {
			if got[name] != typ {
				return false, nil
			}
		}
		return true, nil
	})
	t.Logf("%s reports %+v", cluster, last)
}

// checkNothingOfPolicies checks that m holds no object of Flotilla's
// policies and no Pod Security label Flotilla set.
func checkNothingOfPolicies(t *testing.T, m *testenv.Process) {
	t.Helper()
	ctx := context.Background()
	owned := client.MatchingLabels{policy.OwnedLabel: "true"}
	lists := map[string]client.ObjectList{
		"ClusterRoleBindings": &rbacv1.ClusterRoleBindingList{}, "RoleBindings": &rbacv1.RoleBindingList{},
		"ResourceQuotas": &corev1.ResourceQuotaList{}, "LimitRanges": &corev1.LimitRangeList{},
		"ValidatingAdmissionPolicies": &admissionregistrationv1.ValidatingAdmissionPolicyList{},
	}
	for what, l := range lists {
		if err := m.Client.List(ctx, l, owned); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(l); n != 0 {
			t.Errorf("%d %s of Flotilla's policies in the member", n, what)
		}
	}
	var nss corev1.NamespaceList
	if err := m.Client.List(ctx, &nss); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if _, ok := ns.Labels["pod-security.kubernetes.io/enforce"]; ok || ns.Annotations["flotilla.dev/pod-security"] != "" || ns.Labels[fv1.LabelWorkspace] != "" {
			t.Errorf("namespace %s was labelled: %v %v", ns.Name, ns.Labels, ns.Annotations)
		}
	}
}

// agentLog is what the agent a logged.
func agentLog(t *testing.T, a *agentRun) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Dir, "logs", "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
