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

// AgentBinding is the ClusterRoleBinding of an agent run from its manifest:
// its own rights, which it removes last of all (removeSelf).
const AgentBinding = "flotilla-agent"

// cleanupCluster deletes what Flotilla created in the cluster: labelled
// cluster-wide RBAC and namespaces, but for the agent's own namespace and
// binding, which it needs until the hub has heard of the cleanup.
func cleanupCluster(ctx context.Context, dyn dynamic.Interface) error {
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel}
	for _, kind := range []string{"clusterrolebindings", "clusterroles"} {
		rbac := dyn.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: kind})
		list, err := rbac.List(ctx, sel)
		if err != nil {
			return err
		}
		for _, o := range list.Items {
			if o.GetName() == AgentBinding && kind == "clusterrolebindings" {
				continue
			}
			if err := rbac.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
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
	return nil
}

// removeSelf deletes the agent's namespace (and so the agent, run from its
// manifest), then its binding: the last things it does.
func removeSelf(ctx context.Context, dyn dynamic.Interface) error {
	err := dyn.Resource(namespacesResource).Delete(ctx, SystemNamespace, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	// The namespace's deletion stops this agent, which must not leave its
	// cluster-admin binding to whoever makes that namespace again.
	crb := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	err = dyn.Resource(crb).Delete(context.WithoutCancel(ctx), AgentBinding, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
