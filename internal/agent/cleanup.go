package agent

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// ManagedByLabel marks every object Flotilla creates in a member cluster.
const ManagedByLabel = "app.kubernetes.io/managed-by=flotilla"

// SystemNamespace holds the in-cluster agent; deleting it removes the agent.
const SystemNamespace = "flotilla-system"

// cleanupCluster deletes what Flotilla created in the cluster: labelled
// cluster-wide RBAC and namespaces, the agent's own namespace last.
func cleanupCluster(ctx context.Context, dyn dynamic.Interface) error {
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel}
	for _, kind := range []string{"clusterrolebindings", "clusterroles"} {
		rbac := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: kind}
		if err := dyn.Resource(rbac).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	namespaces := dyn.Resource(namespacesResource)
	nss, err := namespaces.List(ctx, sel)
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		if ns.GetName() == SystemNamespace {
			continue
		}
		if err := namespaces.Delete(ctx, ns.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	err = namespaces.Delete(ctx, SystemNamespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
