package agent

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ManagedByLabel marks every object Flotilla creates in a member cluster.
const ManagedByLabel = "app.kubernetes.io/managed-by=flotilla"

// SystemNamespace holds the in-cluster agent; deleting it removes the agent.
const SystemNamespace = "flotilla-system"

// cleanupCluster deletes what Flotilla created in the cluster: labelled
// cluster-wide RBAC and namespaces, the agent's own namespace last.
func cleanupCluster(ctx context.Context, cs kubernetes.Interface) error {
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel}
	if err := cs.RbacV1().ClusterRoleBindings().DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := cs.RbacV1().ClusterRoles().DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		if ns.Name == SystemNamespace {
			continue
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	err = cs.CoreV1().Namespaces().Delete(ctx, SystemNamespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
