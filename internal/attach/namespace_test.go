package attach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

func TestNamespacesBelongToWorkspaces(t *testing.T) {
	ctx := context.Background()
	hubc := env.Hub.Client
	member := env.Clusters[0]
	attachAndRun(t, "nsx", member)
	hubNS := fv1.HubNamespace("nsx")

	// Every namespace of the cluster appears on the hub, in the default workspace.
	waitFor(t, 10*time.Second, "discovered namespaces", func(ctx context.Context) (bool, error) {
		nss, err := fleet.ListNamespaces(ctx, hubc, "nsx", "")
		if err != nil {
			return false, err
		}
		names := map[string]string{}
		for _, n := range nss {
			names[n.Name] = n.Spec.Workspace
		}
		return names["kube-system"] == "default" && names["default"] == "default", nil
	})
	if err := member.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "made-in-cluster"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "namespace created in the cluster shows on the hub", func(ctx context.Context) (bool, error) {
		err := hubc.Get(ctx, client.ObjectKey{Namespace: hubNS, Name: "made-in-cluster"}, &fv1.ClusterNamespace{})
		return err == nil, client.IgnoreNotFound(err)
	})

	// A namespace created through the hub for a workspace is created in the cluster.
	if _, err := fleet.CreateWorkspace(ctx, hubc, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.CreateNamespace(ctx, hubc, "nsx", "web", "shop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "namespace created in the cluster by the agent", func(ctx context.Context) (bool, error) {
		var ns corev1.Namespace
		if err := member.Client.Get(ctx, client.ObjectKey{Name: "web"}, &ns); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ns.Labels[fv1.LabelWorkspace] == "shop", nil
	})
	waitFor(t, 10*time.Second, "workspace counts it", func(ctx context.Context) (bool, error) {
		var w fv1.Workspace
		err := hubc.Get(ctx, client.ObjectKey{Name: "shop"}, &w)
		return err == nil && w.Status.Namespaces == 1, err
	})

	// It moves only by deletion: the API refuses a change of workspace. (A
	// patch, not an update: the agent writes the object's status meanwhile.)
	cn := &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: hubNS, Name: "web"}}
	move := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"workspace":"default"}}`))
	if err := hubc.Patch(ctx, cn, move); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "cannot move") {
		t.Errorf("moving a namespace: want invalid, got %v", err)
	}
	if _, err := fleet.CreateNamespace(ctx, hubc, "nsx", "web", "default"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating it again elsewhere: %v", err)
	}

	// A workspace with members cannot be deleted; the message lists them.
	if err := fleet.DeleteWorkspace(ctx, hubc, "shop"); err == nil || !strings.Contains(err.Error(), "nsx/web") {
		t.Errorf("deleting a workspace with members: %v", err)
	}

	// Deleting through the hub deletes it in the cluster, then on the hub.
	if err := fleet.DeleteNamespace(ctx, hubc, "nsx", "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "namespace gone from cluster and hub", func(ctx context.Context) (bool, error) {
		errM := member.Client.Get(ctx, client.ObjectKey{Name: "web"}, &corev1.Namespace{})
		errH := hubc.Get(ctx, client.ObjectKey{Namespace: hubNS, Name: "web"}, &fv1.ClusterNamespace{})
		return apierrors.IsNotFound(errM) && apierrors.IsNotFound(errH), nil
	})
	// The API allows it once the workspace's count has caught up.
	waitFor(t, 10*time.Second, "deleting the emptied workspace", func(ctx context.Context) (bool, error) {
		return fleet.DeleteWorkspace(ctx, hubc, "shop") == nil, nil
	})
}
