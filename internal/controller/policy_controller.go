package controller

import (
	"context"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// ClusterPolicyReconciler resolves every policy for one cluster and writes
// what the cluster must hold into its hub namespace, where its agent picks
// it up. It is keyed by cluster name.
type ClusterPolicyReconciler struct {
	Client client.Client
}

// SetupWithManager registers the reconciler; any policy change revisits every
// cluster, a namespace change its own cluster.
func (r *ClusterPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	allClusters := enqueueAll(r.Client, func() client.ObjectList { return &fv1.ClusterList{} })
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterpolicy").
		// A policy change rewrites every cluster's desired state; clusters
		// are independent, and most of the time is waiting on the apiserver.
		WithOptions(controller.Options{MaxConcurrentReconciles: 16}).
		// Health writes change a Cluster often; only its group (spec) and its
		// hub namespace appearing change what it must hold.
		For(&fv1.Cluster{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.(*fv1.Cluster).Status.Namespace != e.ObjectNew.(*fv1.Cluster).Status.Namespace
			}},
		))).
		// Status writes (compliance) do not change what clusters hold.
		Watches(&fv1.Policy{}, allClusters, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&fv1.ClusterNamespace{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: strings.TrimPrefix(o.GetNamespace(), "cluster-")}}}
		})).
		Complete(r)
}

// Reconcile writes one cluster's desired policies.
func (r *ClusterPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil || c.DeletionTimestamp != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.Status.Namespace == "" {
		return ctrl.Result{}, nil // its hub namespace is not there yet; the status update brings us back
	}
	// Render only reads: the cache's objects are shared, not copied.
	var policies fv1.PolicyList
	if err := r.Client.List(ctx, &policies, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	var cns fv1.ClusterNamespaceList
	if err := r.Client.List(ctx, &cns, client.InNamespace(fv1.HubNamespace(c.Name)), client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	nss := make([]policy.Namespace, 0, len(cns.Items))
	for _, n := range cns.Items {
		if n.DeletionTimestamp == nil {
			nss = append(nss, policy.Namespace{Cluster: c.Name, Group: c.Spec.Group, Name: n.Name, Workspace: n.Spec.Workspace, Labels: n.Status.Labels})
		}
	}
	data, err := policy.Encode(policy.Render(policies.Items, nss))
	if err != nil {
		return ctrl.Result{}, err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: policy.DesiredConfigMap, Namespace: fv1.HubNamespace(c.Name), Labels: map[string]string{fv1.LabelCluster: c.Name}}}
	var cur corev1.ConfigMap
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(cm), &cur)
	switch {
	case apierrors.IsNotFound(err):
		cm.Data = data
		return ctrl.Result{}, client.IgnoreAlreadyExists(r.Client.Create(ctx, cm))
	case err != nil:
		return ctrl.Result{}, err
	case maps.Equal(cur.Data, data):
		return ctrl.Result{}, nil
	}
	// A merge patch without a resource version: the desired state is ours
	// alone, and a stale cache must not turn into conflicts and delays.
	before := cur.DeepCopy()
	before.ResourceVersion = ""
	cur.Data = data
	return ctrl.Result{}, r.Client.Patch(ctx, &cur, client.MergeFrom(before))
}
