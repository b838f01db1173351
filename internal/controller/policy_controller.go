package controller

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync"

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
	// Wrote tells the cluster's agent that its desired state changed, and
	// at which resourceVersion.
	Wrote func(cluster, resourceVersion string)

	// written holds, by cluster name, a writtenState.
	written sync.Map
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
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: fv1.ClusterOfHubNamespace(o.GetNamespace())}}}
		})).
		Complete(r)
}

// Reconcile writes one cluster's desired policies.
func (r *ClusterPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil || c.DeletionTimestamp != nil {
		if apierrors.IsNotFound(err) {
			r.written.Delete(req.Name)
		}
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
	// Written without reading: the hub keeps no cache of ConfigMaps (one per
	// cluster), and the desired state is ours alone. A merge patch replaces
	// both keys; an unchanged one is a no-op in the apiserver, which is all a
	// restarted hub's first pass costs. The patch (map keys sorted) is also
	// what tells an unchanged state.
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return ctrl.Result{}, err
	}
	wrote := writtenState{uid: c.UID, sum: sha256.Sum256(patch)}
	if last, ok := r.written.Load(c.Name); ok && last == wrote {
		return ctrl.Result{}, nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: policy.DesiredConfigMap, Namespace: fv1.HubNamespace(c.Name), Labels: map[string]string{fv1.LabelCluster: c.Name}}}
	err = r.Client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) {
		cm.Data = data
		err = client.IgnoreAlreadyExists(r.Client.Create(ctx, cm))
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	r.written.Store(c.Name, wrote)
	if r.Wrote != nil {
		r.Wrote(c.Name, cm.ResourceVersion)
	}
	return ctrl.Result{}, nil
}

// writtenState is what was last written for a cluster; the UID tells a
// cluster attached again under the same name from the one before.
type writtenState struct {
	uid types.UID
	sum [sha256.Size]byte
}
