package attach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"registry.example.com"}}})
		eventuallyRejected(t, a, pod("pshop-web", "untrusted", "docker.io/nginx:1.27", nil), "pshop-registry")
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
}
