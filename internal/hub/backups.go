package hub

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"flotilla.dev/flotilla/internal/backup/controllers"
	"flotilla.dev/flotilla/internal/backup/download"
	"flotilla.dev/flotilla/internal/backup/jobserve"
	"flotilla.dev/flotilla/internal/backup/locations"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/heartbeat/tracker"
)

// setupBackups runs the backup reconcilers and answers agents' backup
// jobs on the agent endpoint. Hub locations keep their archives under the
// data dir's backups/. Archives are downloaded through the hub's apiserver
// (package download). Credentials Secrets are read from the apiserver:
// the hub's cache holds only its own Secrets.
func setupBackups(mgr manager.Manager, dir *datadir.Dir, t *tracker.Tracker, archives *download.Handler) error {
	locs := &locations.Opener{Client: mgr.GetAPIReader(), HubDir: dir.Join("backups"), Namespace: SystemNamespace}
	t.Data = &jobserve.Server{Client: mgr.GetClient(), Locations: locs, ClusterOf: tracker.ClusterOf}
	archives.Serve(mgr.GetClient(), locs)
	return controllers.Setup(mgr, locs, func(cluster string) { t.Changes.Bump(cluster, heartbeat.Jobs) })
}
