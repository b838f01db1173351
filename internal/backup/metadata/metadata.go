package metadata

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Backup is the part of Velero's velero.io/v1 Backup that Flotilla writes
// and reads; other fields of Velero's are ignored on reading.
type Backup struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       Spec              `json:"spec"`
	Status     Status            `json:"status"`
}

// Spec is Velero's BackupSpec, the fields Flotilla has.
type Spec struct {
	IncludedNamespaces      []string              `json:"includedNamespaces,omitempty"`
	ExcludedNamespaces      []string              `json:"excludedNamespaces,omitempty"`
	IncludedResources       []string              `json:"includedResources,omitempty"`
	ExcludedResources       []string              `json:"excludedResources,omitempty"`
	LabelSelector           *metav1.LabelSelector `json:"labelSelector,omitempty"`
	IncludeClusterResources *bool                 `json:"includeClusterResources,omitempty"`
	TTL                     metav1.Duration       `json:"ttl,omitempty"`
	StorageLocation         string                `json:"storageLocation,omitempty"`
}

// Status is Velero's BackupStatus, the fields Flotilla has.
type Status struct {
	Version             int          `json:"version,omitempty"`
	FormatVersion       string       `json:"formatVersion,omitempty"`
	Phase               string       `json:"phase,omitempty"`
	StartTimestamp      *metav1.Time `json:"startTimestamp,omitempty"`
	CompletionTimestamp *metav1.Time `json:"completionTimestamp,omitempty"`
	Expiration          *metav1.Time `json:"expiration,omitempty"`
	Warnings            int          `json:"warnings,omitempty"`
	Errors              int          `json:"errors,omitempty"`
	Progress            *Progress    `json:"progress,omitempty"`
}

// Progress counts items.
type Progress struct {
	TotalItems    int64 `json:"totalItems,omitempty"`
	ItemsBackedUp int64 `json:"itemsBackedUp,omitempty"`
}

// Annotations Flotilla adds: the cluster backed up, and the archive's checksum.
const (
	AnnotationCluster  = "flotilla.dev/cluster"
	AnnotationChecksum = "flotilla.dev/checksum"
)

// veleroNamespace is where Velero keeps its objects; a Velero reading the
// metadata expects it.
const veleroNamespace = "velero"

// For describes b, completed, as Velero would.
func For(b *fv1.Backup) Backup {
	ttl := metav1.Duration{Duration: time.Duration(fv1.DefaultBackupTTL) * time.Second}
	if b.Spec.TTL != nil {
		ttl = *b.Spec.TTL
	}
	phase := string(fv1.PhaseCompleted)
	if b.Status.Errors > 0 {
		phase = string(fv1.PhasePartiallyFailed)
	}
	return Backup{
		APIVersion: "velero.io/v1", Kind: "Backup",
		Metadata: metav1.ObjectMeta{
			Name: b.Name, Namespace: veleroNamespace, Labels: b.Labels,
			Annotations:       map[string]string{AnnotationCluster: b.Spec.Cluster, AnnotationChecksum: b.Status.Checksum},
			CreationTimestamp: b.CreationTimestamp,
		},
		Spec: Spec{
			IncludedNamespaces: b.Spec.IncludedNamespaces, ExcludedNamespaces: b.Spec.ExcludedNamespaces,
			IncludedResources: b.Spec.IncludedResources, ExcludedResources: b.Spec.ExcludedResources,
			LabelSelector: b.Spec.LabelSelector, IncludeClusterResources: b.Spec.IncludeClusterResources,
			TTL: ttl, StorageLocation: b.Status.StorageLocation,
		},
		Status: Status{
			Version: 1, FormatVersion: b.Status.FormatVersion, Phase: phase,
			StartTimestamp: b.Status.StartTimestamp, CompletionTimestamp: b.Status.CompletionTimestamp,
			Expiration: b.Status.Expiration, Warnings: int(b.Status.Warnings), Errors: int(b.Status.Errors),
			Progress: &Progress{TotalItems: b.Status.TotalItems, ItemsBackedUp: b.Status.ItemsDone},
		},
	}
}

// Decode reads a velero-backup.json.
func Decode(data []byte) (*Backup, error) {
	var b Backup
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("velero-backup.json is not a backup object: %v", err)
	}
	if b.Kind != "" && b.Kind != "Backup" || b.Metadata.Name == "" {
		return nil, fmt.Errorf("velero-backup.json holds a %q named %q, not a Backup", b.Kind, b.Metadata.Name)
	}
	return &b, nil
}
