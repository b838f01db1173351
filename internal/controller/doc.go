// Package controller holds the hub's reconcilers, one per kind.
package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// SetupAll registers every hub reconciler with mgr;
// hubInfo is written to every cluster namespace for its agent.
func SetupAll(mgr ctrl.Manager, hubInfo map[string]string) error {
	c := mgr.GetClient()
	if err := (&ClusterGroupReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&WorkspaceReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&ClusterPolicyReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PolicyReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&CSRReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ClusterReconciler{Client: c, HubInfo: hubInfo}).SetupWithManager(mgr)
}

// live counts the objects not being deleted: a member on its way out does
// not hold its group or workspace.
func live[T any, P interface {
	*T
	client.Object
}](items []T) int32 {
	var n int32
	for i := range items {
		if P(&items[i]).GetDeletionTimestamp() == nil {
			n++
		}
	}
	return n
}

// readyCondition says the counts of a group or workspace are current.
func readyCondition(generation int64, msg string) metav1.Condition {
	return metav1.Condition{
		Type: fv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Reconciled",
		Message: msg, ObservedGeneration: generation,
	}
}
