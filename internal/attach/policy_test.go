package attach_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/testenv"
)

func createPolicy(t *testing.T, name string, spec fv1.PolicySpec) {
	t.Helper()
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := env.Hub.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Hub.Client.Delete(context.Background(), p) })
}

func pod(ns, name, image string, mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	if mut != nil {
		mut(p)
	}
	return p
}

// eventuallyRejected waits until the member's apiserver rejects obj with a
// message containing want (policies arrive asynchronously).
func eventuallyRejected(t *testing.T, member *testenv.Process, obj client.Object, want string) {
	t.Helper()
	waitFor(t, 15*time.Second, "rejection mentioning "+want, func(ctx context.Context) (bool, error) {
		err := member.Client.Create(ctx, obj.DeepCopyObject().(client.Object))
		if err == nil {
			member.Client.Delete(ctx, obj)
			return false, nil
		}
		return strings.Contains(err.Error(), want), nil
	})
}

func TestPoliciesEnforcedByMemberAPIServers(t *testing.T) {
	ctx := context.Background()
	a, b := env.Clusters[0], env.Clusters[1]
	attachAndRun(t, "pol-a", a)
	attachAndRun(t, "pol-b", b)
	if _, err := fleet.CreateClusterGroup(ctx, env.Hub.Client, "pol", ""); err != nil {
		t.Fatal(err)
	}
	// pol-a joins group "pol"; pol-b stays outside it.
	var ca fv1.Cluster
	env.Hub.Client.Get(ctx, client.ObjectKey{Name: "pol-a"}, &ca)
	patch := client.MergeFrom(ca.DeepCopy())
	ca.Spec.Group = "pol"
	if err := env.Hub.Client.Patch(ctx, &ca, patch); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.CreateWorkspace(ctx, env.Hub.Client, "pshop", ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ name, ws string }{{"pshop-web", "pshop"}, {"pother", "default"}} {
		if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, "pol-a", n.name, n.ws); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "namespaces in cluster", func(ctx context.Context) (bool, error) {
		return a.Client.Get(ctx, client.ObjectKey{Name: "pother"}, &corev1.Namespace{}) == nil &&
			a.Client.Get(ctx, client.ObjectKey{Name: "pshop-web"}, &corev1.Namespace{}) == nil, nil
	})

	t.Run("image registry on a workspace", func(t *testing.T) {
		createPolicy(t, "pshop-registry", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Workspace: "pshop"},
			ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"registry.example.com", "mirror.example.com/team-*/*"}}})
		eventuallyRejected(t, a, pod("pshop-web", "untrusted", "docker.io/nginx:1.27", nil), "pshop-registry")
		if err := a.Client.Create(ctx, pod("pshop-web", "mirrored", "mirror.example.com/team-a/nginx:1.27", nil)); err != nil {
			t.Errorf("pod matching an allowed pattern: %v", err)
		}
		if err := a.Client.Create(ctx, pod("pshop-web", "other-team", "mirror.example.com/ops/nginx:1.27", nil)); err == nil {
			t.Error("pod outside the allowed pattern admitted")
		}
		if err := a.Client.Create(ctx, pod("pother", "untrusted", "docker.io/nginx:1.27", nil)); err != nil {
			t.Errorf("same pod in another workspace's namespace: %v", err)
		}
		if err := a.Client.Create(ctx, pod("pshop-web", "trusted", "registry.example.com/nginx:1.27", nil)); err != nil {
			t.Errorf("trusted pod: %v", err)
		}
	})

	t.Run("security baseline on a group", func(t *testing.T) {
		createPolicy(t, "pol-baseline", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{ClusterGroup: "pol"}, Security: &fv1.SecuritySpec{Level: "baseline"}})
		priv := func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}
		eventuallyRejected(t, a, pod("pother", "privileged", "registry.example.com/x:1", priv), "baseline")
		if err := b.Client.Create(ctx, pod("default", "privileged", "x/y:1", priv)); err != nil {
			t.Errorf("privileged pod in a cluster outside the group: %v", err)
		}
		// Someone removes the level from a governed namespace: the agent,
		// watching namespaces, sets it again.
		const enforce = "pod-security.kubernetes.io/enforce"
		var ns corev1.Namespace
		if err := a.Client.Get(ctx, client.ObjectKey{Name: "pother"}, &ns); err != nil {
			t.Fatal(err)
		}
		delete(ns.Labels, enforce)
		if err := a.Client.Update(ctx, &ns); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "Pod Security level set again", func(ctx context.Context) (bool, error) {
			err := a.Client.Get(ctx, client.ObjectKey{Name: "pother"}, &ns)
			return err == nil && ns.Labels[enforce] == "baseline", nil
		})
	})

	t.Run("quota on a cluster", func(t *testing.T) {
		two := int64(2)
		createPolicy(t, "pol-quota", fv1.PolicySpec{Type: fv1.PolicyQuota, Scope: fv1.PolicyScope{Cluster: "pol-a"}, Quota: &fv1.QuotaSpec{Pods: &two}})
		waitFor(t, 15*time.Second, "quota in cluster", func(ctx context.Context) (bool, error) {
			var q corev1.ResourceQuota
			err := a.Client.Get(ctx, client.ObjectKey{Namespace: "pother", Name: "flotilla-quota"}, &q)
			return err == nil && q.Status.Hard.Pods().Cmp(resource.MustParse("2")) == 0, nil
		})
		var err error
		for i := range 4 {
			if err = a.Client.Create(ctx, pod("pother", "q"+string(rune('a'+i)), "x/y:1", nil)); err != nil {
				break
			}
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
			t.Errorf("pod beyond the quota: %v", err)
		}
		if in := waitInsight(t, "pol-a", "pol-quota", fv1.PolicyQuota, fv1.InsightQuotaExceeded, "ResourceQuota/flotilla-quota"); !strings.Contains(in.Message, "pods: 2 of 2 used") {
			t.Errorf("quota insight = %+v", in)
		}
	})

	t.Run("access on a group, drift restored", func(t *testing.T) {
		createPolicy(t, "pol-alice", fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{ClusterGroup: "pol"},
			Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "alice"}}}})
		canList := func(m *testenv.Process) bool {
			r, err := m.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"},
			}}, metav1.CreateOptions{})
			return err == nil && r.Status.Allowed
		}
		waitFor(t, 15*time.Second, "alice may list pods in the group's cluster", func(context.Context) (bool, error) { return canList(a), nil })
		if canList(b) {
			t.Error("alice may list pods in a cluster outside the group")
		}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "flotilla-pol-alice"}}
		if err := a.Client.Delete(ctx, binding); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, 10*time.Second, "binding restored", func(ctx context.Context) (bool, error) {
			return a.Client.Get(ctx, client.ObjectKeyFromObject(binding), &rbacv1.ClusterRoleBinding{}) == nil, nil
		})
		t.Logf("drift restored in %s", time.Since(start))

		// Deleting the policy on the hub leaves nothing behind.
		env.Hub.Client.Delete(ctx, &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "pol-alice"}})
		waitFor(t, 15*time.Second, "binding removed with its policy", func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(a.Client.Get(ctx, client.ObjectKeyFromObject(binding), &rbacv1.ClusterRoleBinding{})), nil
		})
	})

	t.Run("namespace selector narrows an access policy", func(t *testing.T) {
		mustCreateNamespace(t, a, "psel")
		createPolicy(t, "pol-sel", fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{ClusterGroup: "pol"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}},
			Access:            &fv1.AccessSpec{Role: "edit", Subjects: []fv1.Subject{{Kind: "User", Name: "bob"}}}})
		binding := func(ns string) error {
			return a.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flotilla-pol-sel"}, &rbacv1.RoleBinding{})
		}
		labelNamespace(t, a, "psel", `{"metadata":{"labels":{"team":"blue"}}}`)
		waitFor(t, 15*time.Second, "binding in the labelled namespace", func(context.Context) (bool, error) { return binding("psel") == nil, nil })
		if err := binding("pother"); !apierrors.IsNotFound(err) {
			t.Errorf("binding in a namespace without the label: %v", err)
		}
		// A deleted RoleBinding comes back.
		if err := a.Client.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "psel", Name: "flotilla-pol-sel"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "RoleBinding restored", func(context.Context) (bool, error) { return binding("psel") == nil, nil })
		labelNamespace(t, a, "psel", `{"metadata":{"labels":{"team":null}}}`)
		waitFor(t, 15*time.Second, "binding gone with the label", func(context.Context) (bool, error) { return apierrors.IsNotFound(binding("psel")), nil })
	})

	t.Run("audit mode admits and reports", func(t *testing.T) {
		// pol-b is in the default group; "privileged" in its default
		// namespace predates the policy.
		createPolicy(t, "pol-audit", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{ClusterGroup: "default"}, Mode: fv1.ModeAudit,
			Security: &fv1.SecuritySpec{Level: "baseline", DisallowPrivileged: true}})
		waitInsight(t, "pol-b", "pol-audit", fv1.PolicySecurity, fv1.InsightAuditHit, "Pod/privileged")
		priv := func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}
		if err := b.Client.Create(ctx, pod("default", "audited", "x/y:1", priv)); err != nil {
			t.Fatalf("audit mode rejected a pod: %v", err)
		}
		in := waitInsight(t, "pol-b", "pol-audit", fv1.PolicySecurity, fv1.InsightAuditHit, "Pod/audited")
		if !strings.Contains(in.Message, "privileged") {
			t.Errorf("insight = %+v", in)
		}
		waitFor(t, 15*time.Second, "policy status counts the hits", func(ctx context.Context) (bool, error) {
			var p fv1.Policy
			err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "pol-audit"}, &p)
			return err == nil && p.Status.Clusters >= 1 && p.Status.Noncompliant >= 1 && p.Status.Violations >= 2, err
		})
	})

	t.Run("a violation that existed before the policy", func(t *testing.T) {
		mustCreateNamespace(t, a, "pold")
		if err := a.Client.Create(ctx, pod("pold", "old-latest", "registry.example.com/app:latest", nil)); err != nil {
			t.Fatal(err)
		}
		createPolicy(t, "pol-latest", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Workspace: "default"},
			ImageRegistry: &fv1.ImageRegistrySpec{BlockLatest: true}})
		eventuallyRejected(t, a, pod("pold", "new-latest", "registry.example.com/app:latest", nil), "pol-latest")
		in := waitInsight(t, "pol-a", "pol-latest", fv1.PolicyImageRegistry, fv1.InsightViolation, "Pod/old-latest")
		if in.Namespace != "pold" || !strings.Contains(in.Message, "tag other than latest") {
			t.Errorf("insight = %+v", in)
		}
		bin, err := testenv.Binary()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "policy", "insights", "--cluster", "pol-a", "--type", "image-registry", "--hub-kubeconfig", env.Hub.Kubeconfig).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "old-latest") || !strings.Contains(string(out), "Violation") {
			t.Errorf("flotilla policy insights: %v\n%s", err, out)
		}
	})

	t.Run("mutation runs before validation", func(t *testing.T) {
		mustCreateNamespace(t, a, "pmut")
		createPolicy(t, "pol-defaults", fv1.PolicySpec{Type: fv1.PolicyMutation, Scope: fv1.PolicyScope{Cluster: "pol-a"},
			Mutation: &fv1.MutationSpec{AddLabels: map[string]string{"example.com/owner": "platform"}, PodSecurityContext: &fv1.PodSecurityDefaults{RunAsNonRoot: ptr.To(true)}}})
		createPolicy(t, "pol-nonroot", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{Cluster: "pol-a"}, Security: &fv1.SecuritySpec{RequireRunAsNonRoot: true}})
		asRoot := func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}
		}
		eventuallyRejected(t, a, pod("pmut", "root", "x/y:1", asRoot), "security policy pol-nonroot")
		// A pod that says nothing is defaulted to non-root, then admitted.
		var got corev1.Pod
		waitFor(t, 15*time.Second, "pod defaulted and labelled", func(ctx context.Context) (bool, error) {
			p := pod("pmut", "plain", "x/y:1", nil)
			if err := a.Client.Create(ctx, p); err != nil {
				return false, nil
			}
			if err := a.Client.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
				return false, err
			}
			if got.Labels["example.com/owner"] == "platform" {
				return true, nil
			}
			a.Client.Delete(ctx, p)
			return false, nil
		})
		if sc := got.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("pod security context = %+v, want runAsNonRoot defaulted to true", sc)
		}
	})
}

// waitInsight waits until cluster reports a finding of kind about object
// under policy, and returns it.
func waitInsight(t *testing.T, cluster, policy string, typ fv1.PolicyType, kind fv1.InsightKind, object string) fv1.Insight {
	t.Helper()
	var found fv1.Insight
	waitFor(t, 20*time.Second, fmt.Sprintf("%s insight of %s policy %s about %s in %s", kind, typ, policy, object, cluster), func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil || c.Status.Policies == nil {
			return false, err
		}
		for _, in := range c.Status.Policies.Insights {
			if in.Policy == policy && in.Type == typ && in.Kind == kind && in.Object == object {
				found = in
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

func mustCreateNamespace(t *testing.T, m *testenv.Process, name string) {
	t.Helper()
	if err := m.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func labelNamespace(t *testing.T, m *testenv.Process, name, patch string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := m.Client.Patch(context.Background(), ns, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}
