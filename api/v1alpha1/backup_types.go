package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JobPhase is how far a Backup or a Restore has come.
// +kubebuilder:validation:Enum=New;InProgress;Completed;PartiallyFailed;Failed
type JobPhase string

// Job phases, as Velero names them.
const (
	PhaseNew             JobPhase = "New"
	PhaseInProgress      JobPhase = "InProgress"
	PhaseCompleted       JobPhase = "Completed"
	PhasePartiallyFailed JobPhase = "PartiallyFailed"
	PhaseFailed          JobPhase = "Failed"
)

// Done reports whether p is final.
func (p JobPhase) Done() bool {
	return p == PhaseCompleted || p == PhasePartiallyFailed || p == PhaseFailed
}

// DefaultBackupTTL is how long a backup is kept unless it says otherwise.
const DefaultBackupTTL = 30 * 24 * 60 * 60 // seconds

// ResourceFilter selects what a backup or a restore takes.
type ResourceFilter struct {
	// IncludedNamespaces: only these ("*" or empty: all).
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	IncludedNamespaces []string `json:"includedNamespaces,omitempty"`
	// ExcludedNamespaces are left out.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	ExcludedNamespaces []string `json:"excludedNamespaces,omitempty"`
	// IncludedResources: only these, as resource or resource.group
	// (configmaps, deployments.apps); "*" or empty: all.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	IncludedResources []string `json:"includedResources,omitempty"`
	// ExcludedResources are left out.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	ExcludedResources []string `json:"excludedResources,omitempty"`
	// LabelSelector: only objects it matches.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
	// IncludeClusterResources: unset takes cluster-scoped resources only
	// when every namespace is taken (and then all of them); true always;
	// false never.
	// +optional
	IncludeClusterResources *bool `json:"includeClusterResources,omitempty"`
}

// BackupTemplate is a backup of some cluster: what a Schedule makes.
type BackupTemplate struct {
	ResourceFilter `json:",inline"`
	// TTL is how long the backup is kept; default 720h (30 days).
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// StorageLocation names the BackupLocation; empty: the cluster's
	// assigned location (cluster, then group, then organization).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageLocation string `json:"storageLocation,omitempty"`
}

// BackupSpec is a backup of one cluster. It cannot change once made.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a backup's spec cannot change: create another backup"
type BackupSpec struct {
	// Cluster is the attached cluster to back up.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Cluster        string `json:"cluster"`
	BackupTemplate `json:",inline"`
}

// JobMessage is a warning or an error about one item, or about the job.
type JobMessage struct {
	// +kubebuilder:validation:Enum=Warning;Error
	Severity string `json:"severity"`
	// Resource is resource.group of the item, if about one.
	// +optional
	Resource string `json:"resource,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
}

// MaxJobMessages bounds the messages a status keeps; the counts stay exact.
const MaxJobMessages = 100

// JobProgress is what an agent reports of a backup or a restore.
type JobProgress struct {
	// +optional
	Phase JobPhase `json:"phase,omitempty"`
	// TotalItems the job found to take.
	// +optional
	TotalItems int64 `json:"totalItems,omitempty"`
	// ItemsDone: backed up, or restored.
	// +optional
	ItemsDone int64 `json:"itemsDone,omitempty"`
	// ItemsSkipped: not restored (exist already with policy none, or
	// recreated by their controllers).
	// +optional
	ItemsSkipped int64 `json:"itemsSkipped,omitempty"`
	// +optional
	Warnings int32 `json:"warnings,omitempty"`
	// +optional
	Errors int32 `json:"errors,omitempty"`
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Messages []JobMessage `json:"messages,omitempty"`
	// +optional
	StartTimestamp *metav1.Time `json:"startTimestamp,omitempty"`
	// +optional
	CompletionTimestamp *metav1.Time `json:"completionTimestamp,omitempty"`
}

// BackupStatus is a backup's progress and result.
type BackupStatus struct {
	JobProgress `json:",inline"`
	// StorageLocation is the location the backup went to.
	// +optional
	StorageLocation string `json:"storageLocation,omitempty"`
	// Expiration is when the backup is deleted, from the hub and the store.
	// +optional
	Expiration *metav1.Time `json:"expiration,omitempty"`
	// Size of the archive in bytes.
	// +optional
	Size int64 `json:"size,omitempty"`
	// Checksum of the archive, "sha256:HEX"; a restore verifies it before
	// its first write.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// Uploaded is set once the agent stored the archive under its
	// temporary key; the hub then moves it and writes the metadata last.
	// +optional
	Uploaded bool `json:"uploaded,omitempty"`
	// FormatVersion of the archive.
	// +optional
	FormatVersion string `json:"formatVersion,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (reasons Queued, InProgress, Completed, Failed...).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Backup is a backup of one cluster's objects.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="backup name must be lower case letters, digits, '-' and '.', at most 63 characters"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=`.status.itemsDone`
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=`.status.storageLocation`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.expiration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BackupSpec `json:"spec"`
	// +optional
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}

// LabelSchedule marks a Backup made by a Schedule.
const LabelSchedule = "flotilla.dev/schedule"

// Reasons of a Backup's or a Restore's Ready condition.
const (
	// ReasonQueued: the hub accepted the job; the cluster's agent has not
	// started it.
	ReasonQueued = "Queued"
	// ReasonInProgress: the agent runs it.
	ReasonInProgress = "InProgress"
	// ReasonUploaded: the archive is stored; the hub writes its metadata.
	ReasonUploaded = "Uploaded"
)
