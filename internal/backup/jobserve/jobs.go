package jobserve

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/locations"
)

// OpenBackup says whether b is a job its cluster's agent has to run: the
// hub accepted it (chose its location) and it is not yet stored.
func OpenBackup(b *fv1.Backup) bool {
	return b.Status.StorageLocation != "" && !b.Status.Phase.Done() && !b.Status.Uploaded && b.DeletionTimestamp == nil
}

// OpenRestore says whether r is a job its cluster's agent has to run: the
// hub accepted it and it is not done.
func OpenRestore(r *fv1.Restore) bool {
	if r.Status.Phase.Done() || r.DeletionTimestamp != nil {
		return false
	}
	c := meta.FindStatusCondition(r.Status.Conditions, fv1.ConditionReady)
	return c != nil && (c.Reason == fv1.ReasonQueued || c.Reason == fv1.ReasonInProgress)
}

// jobsOf lists cluster's open jobs, backups first.
func (s *Server) jobsOf(ctx context.Context, cluster string) ([]jobs.Job, error) {
	var out []jobs.Job
	var bl fv1.BackupList
	if err := s.Client.List(ctx, &bl); err != nil {
		return nil, err
	}
	for i := range bl.Items {
		b := &bl.Items[i]
		if b.Spec.Cluster != cluster || !OpenBackup(b) {
			continue
		}
		access, err := s.access(ctx, b.Status.StorageLocation)
		if err != nil {
			klog.ErrorS(err, "backup held back from its agent", "backup", b.Name)
			continue
		}
		spec := b.Spec
		out = append(out, jobs.Job{
			Kind: jobs.KindBackup, Name: b.Name, UID: b.UID, Phase: b.Status.Phase, Backup: &spec, Location: access,
			Archive: jobs.UploadKey(b.Name, b.UID), ResourceList: jobs.ResourceListKey(b.Name),
		})
	}
	var rl fv1.RestoreList
	if err := s.Client.List(ctx, &rl); err != nil {
		return nil, err
	}
	for i := range rl.Items {
		r := &rl.Items[i]
		if r.Spec.Cluster != cluster || !OpenRestore(r) {
			continue
		}
		loc, checksum, err := Source(ctx, s.Client, r)
		if err != nil {
			klog.ErrorS(err, "restore held back from its agent", "restore", r.Name)
			continue
		}
		access, err := s.access(ctx, loc)
		if err != nil {
			klog.ErrorS(err, "restore held back from its agent", "restore", r.Name)
			continue
		}
		spec := r.Spec
		out = append(out, jobs.Job{
			Kind: jobs.KindRestore, Name: r.Name, UID: r.UID, Phase: r.Status.Phase, Restore: &spec, Location: access,
			Archive: jobs.ArchiveKey(r.Spec.BackupName), Checksum: checksum,
		})
	}
	return out, nil
}

func (s *Server) access(ctx context.Context, name string) (jobs.Location, error) {
	loc, err := locations.Get(ctx, s.Client, name)
	if err != nil {
		return jobs.Location{}, err
	}
	return s.Locations.Access(ctx, loc)
}

// Source is where r reads its backup from, and the checksum the archive
// must have ("" for a backup that recorded none).
func Source(ctx context.Context, c client.Reader, r *fv1.Restore) (location, checksum string, err error) {
	if r.Spec.Location != "" {
		return r.Spec.Location, r.Status.Checksum, nil
	}
	var b fv1.Backup
	if err := c.Get(ctx, client.ObjectKey{Name: r.Spec.BackupName}, &b); err != nil {
		return "", "", err
	}
	return b.Status.StorageLocation, b.Status.Checksum, nil
}

// mayUse says whether cluster's agent may write (or read) key of location
// loc: the upload key or resource list of one of its open backups there,
// or an object of the backup one of its open restores reads from there.
func (s *Server) mayUse(ctx context.Context, cluster, loc, key string, write bool) error {
	if write {
		var bl fv1.BackupList
		if err := s.Client.List(ctx, &bl); err != nil {
			return err
		}
		for i := range bl.Items {
			b := &bl.Items[i]
			if b.Spec.Cluster == cluster && OpenBackup(b) && b.Status.StorageLocation == loc &&
				(key == jobs.UploadKey(b.Name, b.UID) || key == jobs.ResourceListKey(b.Name)) {
				return nil
			}
		}
		return forbidden("cluster %s has no open backup that writes %s in location %s", cluster, key, loc)
	}
	var rl fv1.RestoreList
	if err := s.Client.List(ctx, &rl); err != nil {
		return err
	}
	for i := range rl.Items {
		r := &rl.Items[i]
		if r.Spec.Cluster != cluster || !OpenRestore(r) || !strings.HasPrefix(key, jobs.BackupPrefix(r.Spec.BackupName)) {
			continue
		}
		if src, _, err := Source(ctx, s.Client, r); err == nil && src == loc {
			return nil
		}
	}
	return forbidden("cluster %s has no open restore that reads %s from location %s", cluster, key, loc)
}
