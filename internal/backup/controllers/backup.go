package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/archive"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/locations"
	"flotilla.dev/flotilla/internal/backup/metadata"
	"flotilla.dev/flotilla/internal/backup/store"
)

// BackupReconciler accepts Backups (chooses the location, sets the
// expiry, tells the cluster's agent), finishes the ones whose archive the
// agent stored, and deletes expired ones with their objects in the store.
type BackupReconciler struct {
	Client    client.Client
	Locations *locations.Opener
	Notify    func(cluster string)
}

// SetupWithManager registers the reconciler.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("backup").For(&fv1.Backup{}).Complete(r)
}

// Reconcile moves one Backup on.
func (r *BackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var b fv1.Backup
	if err := r.Client.Get(ctx, req.NamespacedName, &b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch {
	case b.DeletionTimestamp != nil:
		return ctrl.Result{}, r.remove(ctx, &b)
	case b.Status.StorageLocation == "" && !b.Status.Phase.Done():
		return ctrl.Result{}, r.accept(ctx, &b)
	case b.Status.Uploaded && !b.Status.Phase.Done():
		return ctrl.Result{}, r.finish(ctx, &b)
	case b.Status.Phase.Done():
		return r.expire(ctx, &b)
	}
	if queued(b.Status.Conditions) {
		// The agent lists its jobs from this cache: tell it only now that
		// the cache holds the backup queued, or it may list too soon,
		// miss the job and never be told again.
		r.Notify(b.Spec.Cluster)
	}
	return ctrl.Result{}, r.failIfGone(ctx, &b)
}

// queued says whether the hub accepted a job that no agent started yet.
func queued(conds []metav1.Condition) bool {
	c := meta.FindStatusCondition(conds, fv1.ConditionReady)
	return c != nil && c.Reason == fv1.ReasonQueued
}

// accept chooses the backup's location and queues it for its agent.
func (r *BackupReconciler) accept(ctx context.Context, b *fv1.Backup) error {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, client.ObjectKey{Name: b.Spec.Cluster}, &c); apierrors.IsNotFound(err) {
		return r.fail(ctx, b, "ClusterNotFound", "cluster "+b.Spec.Cluster+" is not attached to this hub: `flotilla cluster list` shows the attached ones")
	} else if err != nil {
		return err
	}
	name := b.Spec.StorageLocation
	if name == "" {
		var locs fv1.BackupLocationList
		if err := r.Client.List(ctx, &locs); err != nil {
			return err
		}
		var err error
		if name, err = locations.Assigned(locs.Items, c.Name, groupOf(&c)); err != nil {
			return r.fail(ctx, b, "NoLocation", err.Error())
		}
	}
	if _, err := locations.Get(ctx, r.Client, name); apierrors.IsNotFound(errors.Unwrap(err)) {
		return r.fail(ctx, b, "LocationNotFound", "backup location "+name+" does not exist: `flotilla backup-location list` shows them")
	} else if err != nil {
		return err
	}
	if controllerutil.AddFinalizer(b, finalizer) {
		if err := r.Client.Update(ctx, b); err != nil {
			return err
		}
	}
	ttl := time.Duration(fv1.DefaultBackupTTL) * time.Second
	if b.Spec.TTL != nil {
		ttl = b.Spec.TTL.Duration
	}
	exp := metav1.NewTime(b.CreationTimestamp.Add(ttl))
	b.Status.StorageLocation, b.Status.Expiration, b.Status.FormatVersion = name, &exp, archive.FormatVersion
	b.Status.Phase, b.Status.ObservedGeneration = fv1.PhaseNew, b.Generation
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: fv1.ReasonQueued, Message: "waiting for cluster " + b.Spec.Cluster + "'s agent to start it", ObservedGeneration: b.Generation})
	// Its agent is told when the update comes back through the cache.
	return r.Client.Status().Update(ctx, b)
}

// finish moves the uploaded archive to its key and writes the metadata
// last: only then is the backup Completed, in the store and on the hub.
func (r *BackupReconciler) finish(ctx context.Context, b *fv1.Backup) error {
	st, err := r.open(ctx, b.Status.StorageLocation)
	if err != nil {
		return r.condition(ctx, b, "LocationUnavailable", err.Error())
	}
	from, to := jobs.UploadKey(b.Name, b.UID), jobs.ArchiveKey(b.Name)
	if _, err := st.Stat(ctx, from); err == nil {
		if err := st.Move(ctx, from, to); err != nil {
			return r.condition(ctx, b, "LocationUnavailable", "moving the archive into place: "+err.Error())
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return r.condition(ctx, b, "LocationUnavailable", err.Error())
	} else if _, err := st.Stat(ctx, to); err != nil {
		return r.fail(ctx, b, "ArchiveMissing", "the agent reported the archive stored, but the location holds neither "+from+" nor "+to)
	}
	done := b.DeepCopy()
	done.Status.Phase = fv1.PhaseCompleted
	if b.Status.Errors > 0 {
		done.Status.Phase = fv1.PhasePartiallyFailed
	}
	now := metav1.Now()
	done.Status.CompletionTimestamp = &now
	md, err := json.Marshal(metadata.For(done))
	if err != nil {
		return err
	}
	if err := st.Put(ctx, jobs.MetadataKey(b.Name), bytes.NewReader(md), int64(len(md))); err != nil {
		return r.condition(ctx, b, "LocationUnavailable", "writing the metadata: "+err.Error())
	}
	msg := fmt.Sprintf("%d items, %d bytes", done.Status.ItemsDone, done.Status.Size)
	if done.Status.Errors > 0 {
		msg += fmt.Sprintf(", %d errors: see status.messages", done.Status.Errors)
	}
	meta.SetStatusCondition(&done.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: string(done.Status.Phase), Message: msg, ObservedGeneration: b.Generation})
	return r.Client.Status().Update(ctx, done)
}

// expire deletes a finished backup once its TTL has passed.
func (r *BackupReconciler) expire(ctx context.Context, b *fv1.Backup) (ctrl.Result, error) {
	if b.Status.Expiration == nil {
		return ctrl.Result{}, nil
	}
	if left := time.Until(b.Status.Expiration.Time); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Delete(ctx, b))
}

// remove deletes the backup's objects from its location, then lets the
// Backup go. A location that is gone leaves nothing to delete.
func (r *BackupReconciler) remove(ctx context.Context, b *fv1.Backup) error {
	if !controllerutil.ContainsFinalizer(b, finalizer) {
		return nil
	}
	if b.Status.StorageLocation != "" {
		st, err := r.open(ctx, b.Status.StorageLocation)
		switch {
		case apierrors.IsNotFound(errors.Unwrap(err)):
		case err != nil:
			return r.condition(ctx, b, "LocationUnavailable", "cannot delete the archive yet: "+err.Error())
		default:
			if err := deleteAll(ctx, st, jobs.BackupPrefix(b.Name)); err != nil {
				return r.condition(ctx, b, "LocationUnavailable", "cannot delete the archive yet: "+err.Error())
			}
		}
	}
	controllerutil.RemoveFinalizer(b, finalizer)
	return client.IgnoreNotFound(r.Client.Update(ctx, b))
}

// deleteAll deletes every object under prefix, the metadata first: a
// backup half deleted is no longer listed as whole.
func deleteAll(ctx context.Context, st store.Store, prefix string) error {
	keys, err := st.List(ctx, prefix)
	if err != nil {
		return err
	}
	md := prefix + "velero-backup.json"
	if err := st.Delete(ctx, md); err != nil {
		return err
	}
	for _, k := range keys {
		if k == md {
			continue
		}
		if err := st.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// failIfGone fails an open backup whose cluster was detached.
func (r *BackupReconciler) failIfGone(ctx context.Context, b *fv1.Backup) error {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, client.ObjectKey{Name: b.Spec.Cluster}, &c); apierrors.IsNotFound(err) {
		return r.fail(ctx, b, "ClusterNotFound", "cluster "+b.Spec.Cluster+" was detached before the backup finished")
	} else {
		return err
	}
}

func (r *BackupReconciler) open(ctx context.Context, name string) (store.Store, error) {
	loc, err := locations.Get(ctx, r.Client, name)
	if err != nil {
		return nil, err
	}
	return r.Locations.Open(ctx, loc)
}

// fail ends the backup as Failed, saying why.
func (r *BackupReconciler) fail(ctx context.Context, b *fv1.Backup, reason, msg string) error {
	now := metav1.Now()
	b.Status.Phase, b.Status.CompletionTimestamp = fv1.PhaseFailed, &now
	b.Status.Errors++
	b.Status.Messages = append(b.Status.Messages, fv1.JobMessage{Severity: "Error", Message: msg})
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: b.Generation})
	return r.Client.Status().Update(ctx, b)
}

// condition says why the backup waits, and retries with backoff.
func (r *BackupReconciler) condition(ctx context.Context, b *fv1.Backup, reason, msg string) error {
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: b.Generation})
	if err := r.Client.Status().Update(ctx, b); err != nil {
		return err
	}
	return errors.New(msg)
}

func groupOf(c *fv1.Cluster) string {
	if c.Spec.Group == "" {
		return fv1.DefaultName
	}
	return c.Spec.Group
}
