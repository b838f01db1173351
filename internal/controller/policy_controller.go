package controller

import (
	"context"
	"runtime"

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

// ClusterPolicyReconciler resolves every policy for one cluster and hands
// what the cluster must hold to Deliver, which carries it to the cluster's
// agent. It is keyed by cluster name. It writes nothing: clusters whose
// policies render the same share one copy, and a policy change costs no
// write per cluster.
type ClusterPolicyReconciler struct {
	Client client.Client
	// Deliver takes a cluster's desired policies (policy.Encode's data);
	// it is called on every pass and tells apart what changed.
	Deliver func(cluster string, data map[string]string) error
}

// SetupWithManager registers the reconciler; any policy change revisits every
// cluster, a namespace change its own cluster.
func (r *ClusterPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	allClusters := enqueueAll(r.Client, func() client.ObjectList { return &fv1.ClusterList{} })
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterpolicy").
		// A policy change renders every cluster's desired state: work for
		// the CPU alone, in parallel as far as it has cores.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(2, runtime.GOMAXPROCS(0))}).
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

// Reconcile renders one cluster's desired policies.
func (r *ClusterPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// Read only: the cache's objects are shared, not copied (a policy
	// change visits every cluster).
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c, client.UnsafeDisableDeepCopy); err != nil || c.DeletionTimestamp != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.Status.Namespace == "" {
		return ctrl.Result{}, nil // its hub namespace is not there yet; the status update brings us back
	}
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
	var desired policy.Desired
	if c.Spec.ReadOnly {
		// Its agent may create nothing there: it is told which policies
		// apply, to report them not enforced.
		desired = policy.RenderReadOnly(policies.Items, nss, c.Name)
	} else {
		desired = policy.Render(policies.Items, nss)
	}
	data, err := policy.Encode(desired)
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.Deliver(c.Name, data)
}
