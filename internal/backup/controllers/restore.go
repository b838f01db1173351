package controllers

import (
	"context"
	"errors"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/locations"
	"flotilla.dev/flotilla/internal/backup/metadata"
	"flotilla.dev/flotilla/internal/backup/store"
)

// RestoreReconciler accepts a Restore once its cluster and its backup are
// found, and tells the cluster's agent; the agent does the rest.
type RestoreReconciler struct {
	Client    client.Client
	Locations *locations.Opener
	Notify    func(cluster string)
}

// SetupWithManager registers the reconciler.
func (r *RestoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("restore").For(&fv1.Restore{}).Complete(r)
}

// Reconcile accepts or fails a new Restore, and fails an open one whose
// cluster went away.
func (r *RestoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rs fv1.Restore
	if err := r.Client.Get(ctx, req.NamespacedName, &rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rs.Status.Phase.Done() || rs.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	var c fv1.Cluster
	if err := r.Client.Get(ctx, client.ObjectKey{Name: rs.Spec.Cluster}, &c); apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.fail(ctx, &rs, "ClusterNotFound", "cluster "+rs.Spec.Cluster+" is not attached to this hub: `flotilla cluster list` shows the attached ones")
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if meta.FindStatusCondition(rs.Status.Conditions, fv1.ConditionReady) != nil {
		// Accepted already. The agent lists its jobs from this cache: tell
		// it once the cache holds the restore queued (see BackupReconciler).
		if queued(rs.Status.Conditions) {
			r.Notify(rs.Spec.Cluster)
		}
		return ctrl.Result{}, nil
	}
	if reason, msg, err := r.check(ctx, &rs); err != nil {
		return ctrl.Result{}, err
	} else if reason != "" {
		return ctrl.Result{}, r.fail(ctx, &rs, reason, msg)
	}
	rs.Status.Phase, rs.Status.ObservedGeneration = fv1.PhaseNew, rs.Generation
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: fv1.ReasonQueued, Message: "waiting for cluster " + rs.Spec.Cluster + "'s agent to start it", ObservedGeneration: rs.Generation})
	return ctrl.Result{}, r.Client.Status().Update(ctx, &rs)
}

// check finds the restore's backup: a finished Backup on the hub, or, when
// the restore names a location, the backup's metadata there, and records
// the checksum the archive must have. It returns why the restore cannot
// run, or "".
func (r *RestoreReconciler) check(ctx context.Context, rs *fv1.Restore) (reason, msg string, err error) {
	name := rs.Spec.BackupName
	if rs.Spec.Location == "" {
		var b fv1.Backup
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &b); apierrors.IsNotFound(err) {
			return "BackupNotFound", "backup " + name + " is not on the hub: `flotilla backup list` shows the backups; to restore one the hub does not know, name its location (--from-location)", nil
		} else if err != nil {
			return "", "", err
		}
		if b.Status.Phase != fv1.PhaseCompleted && b.Status.Phase != fv1.PhasePartiallyFailed {
			return "BackupNotComplete", "backup " + name + " is " + phaseOf(b.Status.Phase) + ": only a Completed or PartiallyFailed backup restores", nil
		}
		rs.Status.Checksum = b.Status.Checksum
		return "", "", nil
	}
	loc, err := locations.Get(ctx, r.Client, rs.Spec.Location)
	if apierrors.IsNotFound(errors.Unwrap(err)) {
		return "LocationNotFound", "backup location " + rs.Spec.Location + " does not exist: `flotilla backup-location list` shows them", nil
	} else if err != nil {
		return "", "", err
	}
	st, err := r.Locations.Open(ctx, loc)
	if err != nil {
		return "LocationUnavailable", err.Error(), nil
	}
	md, err := readMetadata(ctx, st, name)
	if errors.Is(err, store.ErrNotFound) {
		return "BackupNotFound", "backup location " + loc.Name + " holds no complete backup " + name + ": `flotilla restore create --from-location " + loc.Name + "` lists what it holds", nil
	} else if err != nil {
		return "BackupUnreadable", "backup " + name + " in location " + loc.Name + ": " + err.Error(), nil
	}
	if p := md.Status.Phase; p != string(fv1.PhaseCompleted) && p != string(fv1.PhasePartiallyFailed) {
		return "BackupNotComplete", "backup " + name + " in location " + loc.Name + " is " + p + " in its velero-backup.json: only a Completed or PartiallyFailed backup restores", nil
	}
	// Another Flotilla hub's backup says what its archive hashes to.
	rs.Status.Checksum = md.Metadata.Annotations[metadata.AnnotationChecksum]
	if _, err := st.Stat(ctx, jobs.ArchiveKey(name)); errors.Is(err, store.ErrNotFound) {
		return "BackupNotFound", "backup location " + loc.Name + " holds the metadata of backup " + name + " but not its archive " + jobs.ArchiveKey(name), nil
	} else if err != nil {
		return "LocationUnavailable", err.Error(), nil
	}
	return "", "", nil
}

// readMetadata reads backup name's velero-backup.json from st.
func readMetadata(ctx context.Context, st store.Store, name string) (*metadata.Backup, error) {
	rc, err := st.Get(ctx, jobs.MetadataKey(name))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, err
	}
	return metadata.Decode(data)
}

func phaseOf(p fv1.JobPhase) string {
	if p == "" {
		return "New"
	}
	return string(p)
}

// fail ends the restore as Failed, saying why.
func (r *RestoreReconciler) fail(ctx context.Context, rs *fv1.Restore, reason, msg string) error {
	now := metav1.Now()
	rs.Status.Phase, rs.Status.CompletionTimestamp = fv1.PhaseFailed, &now
	rs.Status.Errors++
	rs.Status.Messages = append(rs.Status.Messages, fv1.JobMessage{Severity: "Error", Message: msg})
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: rs.Generation})
	return r.Client.Status().Update(ctx, rs)
}
