package controller

import (
	"context"
	"maps"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// ReachReconciler grants the subjects of each access policy reach, on the
// hub, to the clusters the policy covers: the ClusterRole and
// ClusterRoleBinding policy.ReachName(P), which the hub's apiserver checks on
// every request to the access point. It is keyed by policy name. The names
// are the policy's, so a policy gone, being deleted or of another type has
// its objects deleted by name: no finalizer, and no owner references (the
// hub runs no garbage collector).
type ReachReconciler struct {
	Client client.Client
	last   sync.Map // policy name → when its reach was last computed
}

// reachMinPass is the least time between two computations of one policy's
// reach: a pass lists every cluster (and, for a workspace, every namespace),
// and a registering fleet creates namespaces every few milliseconds.
// Revoking is never held back.
const reachMinPass = time.Second

// SetupWithManager registers the reconciler. Clusters and namespaces revisit
// every access policy only when they come, go or move: health and report
// writes, most of a fleet's events, change no reach.
func (r *ReachReconciler) SetupWithManager(mgr ctrl.Manager) error {
	accessPolicies := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var list fv1.PolicyList
		if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if list.Items[i].Spec.Type == fv1.PolicyAccess {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
			}
		}
		return out
	})
	clusterMoved := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*fv1.Cluster), e.ObjectNew.(*fv1.Cluster)
		return o.Spec.Group != n.Spec.Group || deletionChanged(e)
	}}
	// Labels count for selectors; agents change them only when a member
	// namespace's labels change.
	namespaceMoved := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*fv1.ClusterNamespace), e.ObjectNew.(*fv1.ClusterNamespace)
		return o.Spec.Workspace != n.Spec.Workspace || !maps.Equal(o.Status.Labels, n.Status.Labels) || deletionChanged(e)
	}}
	// The informers' first list brings every existing reach object, so the
	// objects of policies deleted while the hub was down are removed at
	// start; later events put back what someone else changed.
	ofPolicy := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetLabels()[fv1.LabelReachPolicy]}}}
	})
	reachObject := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[fv1.LabelReachPolicy] != ""
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("reach").
		For(&fv1.Policy{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: deletionChanged},
		))).
		Watches(&fv1.Cluster{}, accessPolicies, builder.WithPredicates(clusterMoved)).
		Watches(&fv1.ClusterNamespace{}, accessPolicies, builder.WithPredicates(namespaceMoved)).
		Watches(&rbacv1.ClusterRole{}, ofPolicy, builder.WithPredicates(reachObject)).
		Watches(&rbacv1.ClusterRoleBinding{}, ofPolicy, builder.WithPredicates(reachObject)).
		Complete(r)
}

func deletionChanged(e event.UpdateEvent) bool {
	return (e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
}

// Reconcile grants or revokes one policy's reach.
func (r *ReachReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p fv1.Policy
	err := r.Client.Get(ctx, req.NamespacedName, &p)
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	if err != nil || p.DeletionTimestamp != nil || p.Spec.Type != fv1.PolicyAccess || p.Spec.Access == nil {
		r.last.Delete(req.Name)
		return ctrl.Result{}, r.revoke(ctx, req.Name)
	}
	if last, ok := r.last.Load(p.Name); ok {
		if wait := reachMinPass - time.Since(last.(time.Time)); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	r.last.Store(p.Name, time.Now())

	// ReachOf only reads: the cache's objects are shared, not copied.
	var clusters fv1.ClusterList
	if err := r.Client.List(ctx, &clusters, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	// Only workspace and namespace scopes look at namespaces.
	var nss fv1.ClusterNamespaceList
	switch s := p.Spec.Scope; {
	case s.Workspace != "":
		err = r.Client.List(ctx, &nss, client.UnsafeDisableDeepCopy)
	case s.Namespace != nil:
		err = r.Client.List(ctx, &nss, client.InNamespace(fv1.HubNamespace(s.Namespace.Cluster)), client.UnsafeDisableDeepCopy)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	role, binding := policy.ReachRBAC(&p, policy.ReachOf(&p, policy.Views(clusters.Items, nss.Items)))
	if err := r.writeRole(ctx, role); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.writeBinding(ctx, binding)
}

// revoke deletes a policy's reach objects, the role first: without its
// rules the binding grants nothing.
func (r *ReachReconciler) revoke(ctx context.Context, name string) error {
	for _, o := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		// Read from the cache first: most policies have nothing to delete.
		err := r.Client.Get(ctx, client.ObjectKey{Name: policy.ReachName(name)}, o)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// writeRole creates want or brings the existing role to it, writing only
// when something differs.
func (r *ReachReconciler) writeRole(ctx context.Context, want *rbacv1.ClusterRole) error {
	var have rbacv1.ClusterRole
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	if apierrors.IsNotFound(err) {
		// Already there means the cache lags; its event brings us back.
		return client.IgnoreAlreadyExists(r.Client.Create(ctx, want))
	}
	if err != nil {
		return err
	}
	// An aggregation rule would have the hub's controller manager
	// rewrite the rules.
	if have.AggregationRule == nil && equality.Semantic.DeepEqual(have.Rules, want.Rules) && labelled(&have, want) {
		return nil
	}
	have.AggregationRule, have.Rules = nil, want.Rules
	setLabels(&have, want)
	return r.Client.Update(ctx, &have)
}

// writeBinding is writeRole for the binding. Its roleRef cannot change: a
// binding of that name to another role is replaced.
func (r *ReachReconciler) writeBinding(ctx context.Context, want *rbacv1.ClusterRoleBinding) error {
	var have rbacv1.ClusterRoleBinding
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	if apierrors.IsNotFound(err) {
		return client.IgnoreAlreadyExists(r.Client.Create(ctx, want))
	}
	if err != nil {
		return err
	}
	if have.RoleRef != want.RoleRef {
		if err := r.Client.Delete(ctx, &have, client.Preconditions{UID: &have.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
		return client.IgnoreAlreadyExists(r.Client.Create(ctx, want))
	}
	if equality.Semantic.DeepEqual(have.Subjects, want.Subjects) && labelled(&have, want) {
		return nil
	}
	have.Subjects = want.Subjects
	setLabels(&have, want)
	return r.Client.Update(ctx, &have)
}

// labelled reports whether have carries want's labels; labels others add
// are left alone.
func labelled(have, want client.Object) bool {
	for k, v := range want.GetLabels() {
		if got, ok := have.GetLabels()[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func setLabels(have, want client.Object) {
	l := have.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, want.GetLabels())
	have.SetLabels(l)
}
