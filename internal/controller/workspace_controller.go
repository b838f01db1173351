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

// WorkspaceReconciler keeps each workspace's namespace count and Ready condition.
type WorkspaceReconciler struct {
	Client  client.Client
	members *counter
}

// SetupWithManager registers the reconciler and the namespace→workspace index.
func (r *WorkspaceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	workspace := func(o client.Object) string { return o.(*fv1.ClusterNamespace).Spec.Workspace }
	var err error
	if r.members, err = newCounter(context.Background(), mgr, &fv1.ClusterNamespace{}, workspace); err != nil {
		return err
	}
	enqueue, changed := countedBy(workspace)
	return ctrl.NewControllerManagedBy(mgr).
		For(&fv1.Workspace{}).
		Watches(&fv1.ClusterNamespace{}, enqueue, builder.WithPredicates(changed)).
		Complete(r)
}

// Reconcile counts the workspace's namespaces.
func (r *WorkspaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var w fv1.Workspace
	if err := r.Client.Get(ctx, req.NamespacedName, &w); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	n, err := r.members.count(w.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := w.DeepCopy()
	w.Status.Namespaces = n
	w.Status.ObservedGeneration = w.Generation
	meta.SetStatusCondition(&w.Status.Conditions, readyCondition(w.Generation, "namespace count is up to date"))
	if equality.Semantic.DeepEqual(before.Status, w.Status) {
		return ctrl.Result{}, nil // most member events change no count
	}
	return ctrl.Result{}, r.Client.Status().Patch(ctx, &w, client.MergeFrom(before))
}
