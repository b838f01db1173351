package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// ClusterReconciler gives every Cluster a truthful status before its agent
// first reports: Health Unknown, and whether its group exists.
type ClusterReconciler struct {
	Client client.Client
}

// SetupWithManager registers the reconciler.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&fv1.Cluster{}).Complete(r)
}

// Reconcile initialises the status of a new Cluster.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := c.DeepCopy()
	if c.Status.Health == "" {
		c.Status.Health = fv1.HealthUnknown
	}
	if meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionAgentConnected) == nil {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
			Type: fv1.ClusterConditionAgentConnected, Status: metav1.ConditionUnknown,
			Reason: "AwaitingAgent", Message: "the cluster's agent has not reported yet",
		})
	}
	var g fv1.ClusterGroup
	ready := metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "GroupFound", ObservedGeneration: c.Generation}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: c.Spec.Group}, &g); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		ready.Status, ready.Reason = metav1.ConditionFalse, "GroupNotFound"
		ready.Message = "cluster group " + c.Spec.Group + " does not exist; create it or move the cluster to another group"
	}
	meta.SetStatusCondition(&c.Status.Conditions, ready)
	c.Status.ObservedGeneration = c.Generation
	return ctrl.Result{}, r.Client.Status().Patch(ctx, &c, client.MergeFrom(before))
}
