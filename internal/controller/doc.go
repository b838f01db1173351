// Package controller holds the hub's reconcilers, one per kind.
package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupAll registers every hub reconciler with mgr.
func SetupAll(mgr ctrl.Manager) error {
	c := mgr.GetClient()
	if err := (&ClusterGroupReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ClusterReconciler{Client: c}).SetupWithManager(mgr)
}
