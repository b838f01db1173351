// Package controllers holds the hub's reconcilers of backups, one per
// kind: BackupLocation (reachable, how many backups it holds), Backup
// (accept, finish with the metadata written last, expire), Restore
// (accept once its source is found) and Schedule (make backups on the
// tick). The agents do the work itself (package jobs); the reconcilers
// decide what work there is and write what came of it.
package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"flotilla.dev/flotilla/internal/backup/locations"
)

// finalizer keeps a Backup until its objects are gone from the store.
const finalizer = "flotilla.dev/backup-archive"

// Setup registers every backup reconciler with mgr. notify tells a
// cluster's agent that its jobs changed.
func Setup(mgr ctrl.Manager, locs *locations.Opener, notify func(cluster string)) error {
	c := mgr.GetClient()
	if err := (&BackupReconciler{Client: c, Locations: locs, Notify: notify}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&RestoreReconciler{Client: c, Locations: locs, Notify: notify}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&ScheduleReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&LocationReconciler{Client: c, Locations: locs}).SetupWithManager(mgr)
}
