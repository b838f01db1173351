package controllers

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/locations"
)

// checkEvery is how often the hub checks that a location answers.
const checkEvery = time.Minute

// LocationReconciler checks that each BackupLocation answers and counts
// the Backups stored in it (what the hub's admission policy reads to refuse
// deleting a location that still holds backups).
type LocationReconciler struct {
	Client    client.Client
	Locations *locations.Opener
}

// SetupWithManager registers the reconciler; a Backup's event revisits its
// location.
func (r *LocationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("backuplocation").For(&fv1.BackupLocation{}).
		Watches(&fv1.Backup{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if loc := o.(*fv1.Backup).Status.StorageLocation; loc != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: loc}}}
			}
			return nil
		})).
		Complete(r)
}

// Reconcile checks one location and counts its backups.
func (r *LocationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var loc fv1.BackupLocation
	if err := r.Client.Get(ctx, req.NamespacedName, &loc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := loc.DeepCopy()
	var bl fv1.BackupList
	if err := r.Client.List(ctx, &bl); err != nil {
		return ctrl.Result{}, err
	}
	loc.Status.Backups = 0
	known := map[string]bool{}
	for i := range bl.Items {
		if bl.Items[i].Status.StorageLocation == loc.Name {
			loc.Status.Backups++
			known[bl.Items[i].Name] = true
		}
	}
	checked := loc.Status.LastChecked
	if checked == nil || time.Since(checked.Time) >= checkEvery || loc.Generation != observed(&loc) || asked(&loc, checked.Time) {
		cond := metav1.Condition{Type: fv1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "Reachable",
			Message: "the hub reached the location", ObservedGeneration: loc.Generation}
		if unknown, err := r.check(ctx, &loc, known); err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Unreachable", err.Error()
		} else {
			loc.Status.Unknown = unknown
		}
		meta.SetStatusCondition(&loc.Status.Conditions, cond)
		now := metav1.Now()
		loc.Status.LastChecked = &now
	}
	if !equality.Semantic.DeepEqual(before.Status, loc.Status) {
		if err := r.Client.Status().Patch(ctx, &loc, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: checkEvery}, nil
}

// check reaches the location and lists the backups it holds that are not
// known (no Backup on the hub).
func (r *LocationReconciler) check(ctx context.Context, loc *fv1.BackupLocation, known map[string]bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := r.Locations.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	if err := st.Check(ctx); err != nil {
		return nil, err
	}
	keys, err := st.List(ctx, "backups/")
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, k := range keys {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, "backups/"), "/velero-backup.json")
		if ok && !strings.Contains(name, "/") && !known[name] && len(unknown) < maxUnknown {
			unknown = append(unknown, name)
		}
	}
	return unknown, nil
}

// maxUnknown bounds the unknown backups a status lists.
const maxUnknown = 1000

// asked says whether someone asked for a check after checked.
func asked(loc *fv1.BackupLocation, checked time.Time) bool {
	t, err := time.Parse(time.RFC3339, loc.Annotations[fv1.AnnotationCheck])
	return err == nil && t.After(checked)
}

// observed is the generation the Available condition was last set for.
func observed(loc *fv1.BackupLocation) int64 {
	if c := meta.FindStatusCondition(loc.Status.Conditions, fv1.ConditionAvailable); c != nil {
		return c.ObservedGeneration
	}
	return 0
}
