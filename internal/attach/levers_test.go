package attach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
)

// An attacker with one agent's identity has no lever on others through its
// ClusterNamespaces: it cannot place one into another team's workspace (which
// would pin it), nor hold its hub namespace past a detach with a finalizer of
// its own, nor store metadata there. After a forced detach the name attaches
// again at once.
func TestAgentHasNoLeverOnOthers(t *testing.T) {
	ctx := context.Background()
	const name = "levers"
	if err := env.Hub.Client.Create(ctx, &fv1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}}); err != nil {
		t.Fatal(err)
	}
	a := attachAndRun(t, name, env.Clusters[1])
	as := steal(t, a.Dir).client(t)
	ns := fv1.HubNamespace(name)
	cn := func(n string, mut func(*fv1.ClusterNamespace)) *fv1.ClusterNamespace {
		c := &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
		mut(c)
		return c
	}
	for what, tc := range map[string]struct {
		obj  *fv1.ClusterNamespace
		want string
	}{
		"another team's workspace": {cn("pin", func(c *fv1.ClusterNamespace) { c.Spec.Workspace = "team-b" }),
			"an agent reports namespaces into the default workspace only, not team-b"},
		"a foreign finalizer": {cn("hold", func(c *fv1.ClusterNamespace) { c.Finalizers = []string{fv1.NamespaceFinalizer, "example.com/hold"} }),
			"an agent may set no finalizer but flotilla.dev/namespace, not example.com/hold"},
		"an annotation": {cn("annotated", func(c *fv1.ClusterNamespace) { c.Annotations = map[string]string{"x": strings.Repeat("v", 1000)} }),
			"an agent may set no label but flotilla.dev/discovered and no annotation"},
	} {
		err := as.Create(ctx, tc.obj)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("creating a ClusterNamespace with %s: want forbidden with %q, got %v", what, tc.want, err)
		}
	}

	// Nor may it add a finalizer to one it has.
	var own fv1.ClusterNamespace
	waitFor(t, 30*time.Second, "the agent's report of namespace default", func(ctx context.Context) (bool, error) {
		err := as.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &own)
		return err == nil, client.IgnoreNotFound(err)
	})
	// The running agent writes the same object: a conflict is retried on
	// a fresh copy, as any client would.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := as.Get(ctx, client.ObjectKeyFromObject(&own), &own); err != nil {
			return err
		}
		own.Finalizers = append(own.Finalizers, "example.com/hold")
		return as.Update(ctx, &own)
	})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "example.com/hold") {
		t.Errorf("adding a foreign finalizer to its namespace: want forbidden, got %v", err)
	}
	// Hub users are not held to the agent's rules.
	admin := cn("placed", func(c *fv1.ClusterNamespace) { c.Spec.Workspace = "team-b" })
	if err := env.Hub.Client.Create(ctx, admin); err != nil {
		t.Errorf("a hub user placing a namespace into team-b: %v", err)
	}

	// A forced detach leaves nothing behind: the name attaches again.
	a.Stop()
	if err := attach.Detach(ctx, env.Hub.Client, name, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the hub namespace of the force-detached cluster gone", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	b := attachAndRun(t, name, env.Clusters[1])
	if err := attach.Detach(ctx, env.Hub.Client, name, false, time.Minute); err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	// The member namespace the hub user created for team-b goes with its
	// namespace on the hub; the workspace is free again.
	deleteNamespaces(t, env.Clusters[1], "placed")
	waitFor(t, time.Minute, "workspace team-b deletable", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Delete(ctx, &fv1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}})
		return err == nil || apierrors.IsNotFound(err), nil
	})
}
