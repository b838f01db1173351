package jobs

import (
	"k8s.io/apimachinery/pkg/types"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/store"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// Paths on the hub's agent endpoint, under heartbeat.DataPrefix.
const (
	// ListPath: GET lists the cluster's jobs to run (a List).
	ListPath = heartbeat.DataPrefix + "jobs"
	// ReportPath: POST a Report of one job's progress.
	ReportPath = heartbeat.DataPrefix + "jobs/report"
	// StorePath + LOCATION + "/" + KEY: PUT, GET or HEAD an object of a
	// hub location.
	StorePath = heartbeat.DataPrefix + "store/"
)

// Kinds of job.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
)

// Job is one backup or restore for the agent to run.
type Job struct {
	Kind  string       `json:"kind"`
	Name  string       `json:"name"`
	UID   types.UID    `json:"uid"`
	Phase fv1.JobPhase `json:"phase,omitempty"`
	// Backup is the backup's spec (KindBackup).
	Backup *fv1.BackupSpec `json:"backup,omitempty"`
	// Restore is the restore's spec (KindRestore).
	Restore *fv1.RestoreSpec `json:"restore,omitempty"`
	// Location is where the archive goes or comes from.
	Location Location `json:"location"`
	// Archive is the key of the archive: the temporary key a backup
	// uploads to, or the archive a restore reads.
	Archive string `json:"archive"`
	// ResourceList is where a backup writes Velero's resource list.
	ResourceList string `json:"resourceList,omitempty"`
	// Checksum is what a restore's archive must hash to, "sha256:HEX";
	// empty for archives written elsewhere (by Velero), which are checked
	// for integrity only.
	Checksum string `json:"checksum,omitempty"`
}

// Location says how an agent reaches a BackupLocation.
type Location struct {
	Name string           `json:"name"`
	Type fv1.LocationType `json:"type"`
	// S3 holds the bucket and its credentials (LocationS3 only): sent only
	// to agents whose jobs use the location.
	S3 *store.S3Config `json:"s3,omitempty"`
}

// List is the jobs the hub holds for a cluster, not yet done.
type List struct {
	Jobs []Job `json:"jobs"`
}

// Report is an agent's word on one job.
type Report struct {
	Kind     string          `json:"kind"`
	Name     string          `json:"name"`
	UID      types.UID       `json:"uid"`
	Progress fv1.JobProgress `json:"progress"`
	// Uploaded (backups): the archive is stored under the job's temporary
	// key, Size bytes hashing to Checksum.
	Uploaded bool   `json:"uploaded,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Checksum string `json:"checksum,omitempty"`
}

// Keys of a backup in a location, as Velero lays them out.
func ArchiveKey(backup string) string  { return "backups/" + backup + "/" + backup + ".tar.gz" }
func MetadataKey(backup string) string { return "backups/" + backup + "/velero-backup.json" }
func ResourceListKey(backup string) string {
	return "backups/" + backup + "/" + backup + "-resource-list.json.gz"
}

// UploadKey is where the agent uploads an archive; the hub moves it to
// ArchiveKey once the agent reports it complete, and writes the metadata
// last, so a backup cut short never looks complete.
func UploadKey(backup string, uid types.UID) string {
	return ArchiveKey(backup) + ".uploading-" + string(uid)
}

// BackupPrefix holds every object of a backup.
func BackupPrefix(backup string) string { return "backups/" + backup + "/" }
