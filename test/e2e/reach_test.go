package e2e

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/testenv"
)

// Reaching a cluster through the hub is decided by the hub's own RBAC, which
// access policies grant: asked here of the hub's apiserver itself.
func TestReachFollowsAccessPolicies(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	hub := env.Hub.Client

	create := func(t *testing.T, o client.Object) {
		t.Helper()
		if err := hub.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cluster := func(name, group string) *fv1.Cluster {
		return &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterSpec{Group: group}}
	}
	accessPolicy := func(name string, scope fv1.PolicyScope, subjects ...fv1.Subject) *fv1.Policy {
		return &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.PolicySpec{
			Type: fv1.PolicyAccess, Scope: scope, Access: &fv1.AccessSpec{Role: "view", Subjects: subjects}}}
	}
	may := func(t *testing.T, user string, groups []string, verb, cluster string) bool {
		t.Helper()
		r, err := env.Hub.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: fv1.ProxyGroup, Resource: fv1.ProxyResource, Subresource: fv1.ProxySubresource, Name: cluster, Verb: verb},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	waitUntil := func(t *testing.T, timeout time.Duration, what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		t.Logf("%s after %s", what, time.Since(start).Round(10*time.Millisecond))
	}

	create(t, &fv1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "prod"}})
	create(t, cluster("prod-1", "prod"))
	create(t, cluster("dev-1", fv1.DefaultName))
	create(t, accessPolicy("prod-alice", fv1.PolicyScope{ClusterGroup: "prod"}, fv1.Subject{Kind: "User", Name: "alice"}))

	t.Run("a group's policy reaches the group's clusters only", func(t *testing.T) {
		waitUntil(t, 10*time.Second, "alice reaches prod-1", func() bool { return may(t, "alice", nil, "get", "prod-1") })
		for _, verb := range fv1.ReachVerbs {
			if !may(t, "alice", nil, verb, "prod-1") {
				t.Errorf("alice may not %s prod-1", verb)
			}
		}
		if may(t, "alice", nil, "get", "dev-1") {
			t.Error("alice reaches dev-1, outside the group")
		}
		if may(t, "alice", nil, "list", "prod-1") {
			t.Error("alice may list clusters/proxy: only the reach verbs are granted")
		}
		for _, c := range []string{"prod-1", "dev-1"} {
			if may(t, "bob", nil, "get", c) {
				t.Errorf("bob, whom no policy names, reaches %s", c)
			}
		}
	})

	t.Run("a cluster moving into the group is reached", func(t *testing.T) {
		var c fv1.Cluster
		if err := hub.Get(ctx, client.ObjectKey{Name: "dev-1"}, &c); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Group = "prod"
		if err := hub.Patch(ctx, &c, patch); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "alice reaches dev-1, moved into prod", func() bool { return may(t, "alice", nil, "get", "dev-1") })
	})

	t.Run("deleting the policy revokes", func(t *testing.T) {
		if err := hub.Delete(ctx, &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "prod-alice"}}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, "alice no longer reaches prod-1 or dev-1", func() bool {
			return !may(t, "alice", nil, "get", "prod-1") && !may(t, "alice", nil, "get", "dev-1")
		})
		waitUntil(t, 5*time.Second, "the reach objects are gone", func() bool {
			name := client.ObjectKey{Name: policy.ReachName("prod-alice")}
			return apierrors.IsNotFound(hub.Get(ctx, name, &rbacv1.ClusterRole{})) &&
				apierrors.IsNotFound(hub.Get(ctx, name, &rbacv1.ClusterRoleBinding{}))
		})
	})

	t.Run("the organization's policy reaches clusters attached later", func(t *testing.T) {
		create(t, accessPolicy("everywhere-ops", fv1.PolicyScope{Organization: true}, fv1.Subject{Kind: "Group", Name: "ops"}))
		waitUntil(t, 10*time.Second, "group ops reaches prod-1", func() bool { return may(t, "carol", []string{"ops"}, "get", "prod-1") })
		create(t, cluster("late-1", fv1.DefaultName))
		if !may(t, "carol", []string{"ops"}, "get", "late-1") {
			t.Error("group ops does not reach late-1, attached after the policy")
		}
		if may(t, "carol", []string{"devs"}, "get", "late-1") {
			t.Error("a user outside group ops reaches late-1")
		}
	})

	t.Run("reach objects of a policy that is gone are removed", func(t *testing.T) {
		ghost := policy.ReachName("ghost")
		labels := map[string]string{fv1.LabelReachPolicy: "ghost"}
		create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ghost, Labels: labels}})
		create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ghost, Labels: labels},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ghost}})
		waitUntil(t, 5*time.Second, "the ghost policy's reach objects are deleted", func() bool {
			return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Name: ghost}, &rbacv1.ClusterRole{})) &&
				apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Name: ghost}, &rbacv1.ClusterRoleBinding{}))
		})
	})
}
