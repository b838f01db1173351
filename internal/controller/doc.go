// Package controller holds the hub's reconcilers, one per kind.
package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
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
	if err := (&CSRReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ClusterReconciler{Client: c, HubInfo: hubInfo}).SetupWithManager(mgr)
}
