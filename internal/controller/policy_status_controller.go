package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// Policy condition types.
const (
	// PolicyConditionCompliant: no cluster the policy applies to reports a
	// violation, audit hit or sync error of it.
	PolicyConditionCompliant = "Compliant"
	// PolicyConditionEnforced: every cluster the policy applies to
	// enforces it; False (reason ReadOnlyAttach) names those that report
	// it not enforced, as clusters attached read-only do.
	PolicyConditionEnforced = "Enforced"
)

// PolicyReconciler keeps each Policy's status: where it applies and how the
// clusters there comply, from what their agents report.
type PolicyReconciler struct {
	Client client.Client
	last   sync.Map // policy name → when it was last summed up
}

// minPass is the least time between two summings-up of one policy. Each
// walks every cluster and namespace (60,000 objects at 10,000 clusters),
// and a changing fleet changes some every few milliseconds: at most one
// pass per policy every 2 s, the last change always included.
const minPass = 2 * time.Second

// SetupWithManager registers the reconciler: a cluster's report, group or
// namespaces changing revisits every policy.
func (r *PolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	allPolicies := enqueueAll(r.Client, func() client.ObjectList { return &fv1.PolicyList{} })
	reportOrGroup := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*fv1.Cluster), e.ObjectNew.(*fv1.Cluster)
		return o.Spec.Group != n.Spec.Group || !equality.Semantic.DeepEqual(o.Status.Policies, n.Status.Policies)
	}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("policy").
		For(&fv1.Policy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&fv1.Cluster{}, allPolicies, builder.WithPredicates(reportOrGroup)).
		Watches(&fv1.ClusterNamespace{}, allPolicies).
		Complete(r)
}

// Reconcile sums up one policy's compliance.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p fv1.Policy
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil || p.DeletionTimestamp != nil {
		if apierrors.IsNotFound(err) {
			r.last.Delete(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if last, ok := r.last.Load(p.Name); ok {
		if wait := minPass - time.Since(last.(time.Time)); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	r.last.Store(p.Name, time.Now())
	var clusters fv1.ClusterList
	if err := r.Client.List(ctx, &clusters, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	var cns fv1.ClusterNamespaceList
	if err := r.Client.List(ctx, &cns, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	views := policy.Views(clusters.Items, cns.Items)
	comp := policy.ComplianceOf(&p, views)
	// A preview's last state is reached like the sums': a report that comes
	// within minPass of the last pass requeues one more pass, above.
	preview, _ := policy.Preview(&p, views)

	before := p.DeepCopy()
	p.Status.Clusters, p.Status.Noncompliant, p.Status.Violations = comp.Clusters, comp.Noncompliant, comp.Violations
	p.Status.ObservedGeneration = p.Generation
	p.Status.Preview = preview
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: fv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Resolved", ObservedGeneration: p.Generation,
		Message: fmt.Sprintf("applies to %d clusters", comp.Clusters),
	})
	compliant := metav1.Condition{Type: PolicyConditionCompliant, Status: metav1.ConditionTrue, Reason: "NoFindings", ObservedGeneration: p.Generation,
		Message: "no cluster reports a violation"}
	if comp.Noncompliant > 0 {
		compliant.Status, compliant.Reason = metav1.ConditionFalse, "FindingsReported"
		compliant.Message = fmt.Sprintf("%d of %d clusters report %d violations or sync errors; see flotilla policy insights", comp.Noncompliant, comp.Clusters, comp.Violations)
	}
	meta.SetStatusCondition(&p.Status.Conditions, compliant)
	meta.SetStatusCondition(&p.Status.Conditions, enforced(&p, comp))
	if equality.Semantic.DeepEqual(before.Status, p.Status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.Client.Status().Patch(ctx, &p, client.MergeFrom(before))
}

// enforced is p's Enforced condition: False while a cluster it applies to
// reports it not enforced there.
func enforced(p *fv1.Policy, comp policy.Compliance) metav1.Condition {
	c := metav1.Condition{Type: PolicyConditionEnforced, Status: metav1.ConditionTrue, Reason: "Enforced", ObservedGeneration: p.Generation,
		Message: "every cluster it applies to enforces it"}
	if n := len(comp.NotEnforced); n > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, comp.NotEnforcedReason
		if c.Reason == "" {
			c.Reason = "NotEnforced"
		}
		names := comp.NotEnforced
		if len(names) > 10 {
			names = append(names[:10:10], fmt.Sprintf("and %d more", len(comp.NotEnforced)-10))
		}
		c.Message = fmt.Sprintf("not enforced in %d of %d clusters: %s", n, comp.Clusters, strings.Join(names, ", "))
		if comp.NotEnforcedReason == fv1.ReasonReadOnlyAttach {
			c.Message += " (attached read-only: the agent may not create objects there)"
		}
	}
	return c
}
