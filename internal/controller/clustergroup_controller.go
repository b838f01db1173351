package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// groupIndex indexes Clusters by spec.group.
const groupIndex = "spec.group"

// ClusterGroupReconciler keeps each group's member count and Ready condition.
type ClusterGroupReconciler struct {
	Client  client.Client
	members *counter
}

// SetupWithManager registers the reconciler and the Cluster→group index.
func (r *ClusterGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	group := func(o client.Object) string { return o.(*fv1.Cluster).Spec.Group }
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &fv1.Cluster{}, groupIndex, func(o client.Object) []string {
		return []string{group(o)}
	}); err != nil {
		return err
	}
	var err error
	if r.members, err = newCounter(context.Background(), mgr, &fv1.Cluster{}, group); err != nil {
		return err
	}
	enqueue, changed := countedBy(group)
	return ctrl.NewControllerManagedBy(mgr).
		For(&fv1.ClusterGroup{}).
		Watches(&fv1.Cluster{}, enqueue, builder.WithPredicates(changed)).
		Complete(r)
}

// Reconcile counts the group's clusters.
func (r *ClusterGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var g fv1.ClusterGroup
	if err := r.Client.Get(ctx, req.NamespacedName, &g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	n, err := r.members.count(g.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := g.DeepCopy()
	g.Status.Clusters = n
	g.Status.ObservedGeneration = g.Generation
	meta.SetStatusCondition(&g.Status.Conditions, readyCondition(g.Generation, "group membership is up to date"))
	if equality.Semantic.DeepEqual(before.Status, g.Status) {
		return ctrl.Result{}, nil // most member events change no count
	}
	return ctrl.Result{}, r.Client.Status().Patch(ctx, &g, client.MergeFrom(before))
}
