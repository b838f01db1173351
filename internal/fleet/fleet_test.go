package fleet_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/testenv"
)

// hub is one hub shared by every test; tests use distinct names.
var hub client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hub = env.Hub.Client
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want error containing %q, got %v", want, err)
	}
}

func createCluster(t *testing.T, name, group string) {
	t.Helper()
	c := &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterSpec{Group: group}}
	if err := hub.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Delete(context.Background(), c) })
}

func TestClusterGroupLifecycle(t *testing.T) {
	ctx := context.Background()
	g, err := fleet.CreateClusterGroup(ctx, hub, "staging", "pre-production")
	if err != nil {
		t.Fatal(err)
	}
	if g.APIVersion != "flotilla.dev/v1alpha1" || g.Kind != "ClusterGroup" || g.Spec.Description != "pre-production" {
		t.Errorf("created %s/%s %+v", g.APIVersion, g.Kind, g.Spec)
	}
	_, err = fleet.CreateClusterGroup(ctx, hub, "staging", "")
	wantErr(t, err, `cluster group "staging" already exists`)
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("IsAlreadyExists(%v) = false", err)
	}

	groups, err := fleet.ListClusterGroups(ctx, hub)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		if g.Kind != "ClusterGroup" || g.APIVersion == "" {
			t.Errorf("listed group %s without kind: %q %q", g.Name, g.APIVersion, g.Kind)
		}
		names = append(names, g.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "default") || !strings.Contains(strings.Join(names, ","), "staging") {
		t.Errorf("groups = %v, want default and staging", names)
	}

	if err := fleet.DeleteClusterGroup(ctx, hub, "staging"); err != nil {
		t.Fatal(err)
	}
	err = hub.Get(ctx, client.ObjectKey{Name: "staging"}, &fv1.ClusterGroup{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
}

func TestDeleteClusterGroupWithClustersIsRefused(t *testing.T) {
	ctx := context.Background()
	if _, err := fleet.CreateClusterGroup(ctx, hub, "prod", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.DeleteClusterGroup(ctx, hub, "prod") })
	createCluster(t, "prod-b", "prod")
	createCluster(t, "prod-a", "prod")
	createCluster(t, "elsewhere", "default")

	err := fleet.DeleteClusterGroup(ctx, hub, "prod")
	wantErr(t, err, `cluster group "prod" still has 2 clusters: prod-a, prod-b; move or detach them first`)
	if err := hub.Get(ctx, client.ObjectKey{Name: "prod"}, &fv1.ClusterGroup{}); err != nil {
		t.Fatalf("refused group is gone: %v", err)
	}

	// Once its members are gone or being detached, the group can go. The
	// test's own finalizer keeps prod-b in the middle of its detach.
	// The hub's controllers write the cluster too: retry on conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var b fv1.Cluster
		if err := hub.Get(ctx, client.ObjectKey{Name: "prod-b"}, &b); err != nil {
			return err
		}
		b.Finalizers = append(b.Finalizers, holdFinalizer)
		return hub.Update(ctx, &b)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(t, "prod-b") })
	for _, name := range []string{"prod-a", "prod-b"} {
		if err := hub.Delete(ctx, &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	// The hub's API refuses the delete until the group's member count (kept
	// by a controller) has caught up.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		return fleet.DeleteClusterGroup(ctx, hub, "prod") == nil, nil
	}); err != nil {
		t.Fatalf("group with only detaching members not deletable: %v", fleet.DeleteClusterGroup(ctx, hub, "prod"))
	}
}

// holdFinalizer keeps a deleted cluster around, as an agent still cleaning up would.
const holdFinalizer = "test.flotilla.dev/hold"

// release removes holdFinalizer from the cluster called name.
func release(t *testing.T, name string) {
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var c fv1.Cluster
		if err := hub.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
			return client.IgnoreNotFound(err)
		}
		var keep []string
		for _, f := range c.Finalizers {
			if f != holdFinalizer {
				keep = append(keep, f)
			}
		}
		c.Finalizers = keep
		return client.IgnoreNotFound(hub.Update(ctx, &c))
	})
	if err != nil {
		t.Errorf("releasing %s: %v", name, err)
	}
}

func TestDefaultsCannotBeDeleted(t *testing.T) {
	ctx := context.Background()
	wantErr(t, fleet.DeleteClusterGroup(ctx, hub, "default"), "the default cluster group always exists")
	wantErr(t, fleet.DeleteWorkspace(ctx, hub, "default"), "the default workspace always exists")
	if err := hub.Get(ctx, client.ObjectKey{Name: "default"}, &fv1.ClusterGroup{}); err != nil {
		t.Errorf("default group: %v", err)
	}
	if err := hub.Get(ctx, client.ObjectKey{Name: "default"}, &fv1.Workspace{}); err != nil {
		t.Errorf("default workspace: %v", err)
	}
}

func TestUnknownNames(t *testing.T) {
	ctx := context.Background()
	_, err := fleet.GetCluster(ctx, hub, "nope")
	wantErr(t, err, `cluster "nope" not found; see 'flotilla cluster list'`)
	if !apierrors.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	wantErr(t, fleet.DeleteClusterGroup(ctx, hub, "nope"), `cluster group "nope" not found; see 'flotilla clustergroup list'`)
	wantErr(t, fleet.DeleteWorkspace(ctx, hub, "nope"), `workspace "nope" not found; see 'flotilla workspace list'`)
}

func TestInvalidNamesAreRejectedByTheHub(t *testing.T) {
	ctx := context.Background()
	_, err := fleet.CreateClusterGroup(ctx, hub, "Bad_Name", "")
	wantErr(t, err, "cluster group name must be a DNS-1123 label")
	if !apierrors.IsInvalid(err) {
		t.Errorf("IsInvalid(%v) = false", err)
	}
	_, err = fleet.CreateWorkspace(ctx, hub, "a.b", "")
	wantErr(t, err, "workspace name must be a DNS-1123 label")
}

func TestWorkspaceLifecycle(t *testing.T) {
	ctx := context.Background()
	w, err := fleet.CreateWorkspace(ctx, hub, "payments", "the payments team")
	if err != nil {
		t.Fatal(err)
	}
	if w.Kind != "Workspace" || w.Spec.Description != "the payments team" {
		t.Errorf("created %s %+v", w.Kind, w.Spec)
	}
	_, err = fleet.CreateWorkspace(ctx, hub, "payments", "")
	wantErr(t, err, `workspace "payments" already exists`)
	list, err := fleet.ListWorkspaces(ctx, hub)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "default" || list[1].Name != "payments" || list[1].Kind != "Workspace" {
		t.Errorf("workspaces = %+v", list)
	}
	if err := fleet.DeleteWorkspace(ctx, hub, "payments"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, fleet.DeleteWorkspace(ctx, hub, "payments"), "not found")
}

func TestListAndGetClusters(t *testing.T) {
	ctx := context.Background()
	createCluster(t, "listed", "default")
	list, err := fleet.ListClusters(ctx, hub)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range list {
		if c.Kind != "Cluster" || c.APIVersion != "flotilla.dev/v1alpha1" {
			t.Errorf("listed cluster %s as %q %q", c.Name, c.APIVersion, c.Kind)
		}
		found = found || c.Name == "listed"
	}
	if !found {
		t.Errorf("cluster listed missing from %d clusters", len(list))
	}
	c, err := fleet.GetCluster(ctx, hub, "listed")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "Cluster" || c.Spec.Group != "default" {
		t.Errorf("got %s in group %q", c.Kind, c.Spec.Group)
	}
}
