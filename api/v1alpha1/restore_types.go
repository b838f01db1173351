package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExistingResourcePolicy says what a restore does with an object the
// cluster already has.
// +kubebuilder:validation:Enum=none;update
type ExistingResourcePolicy string

// Existing-resource policies, as Velero names them.
const (
	// ExistingNone leaves it alone and counts it skipped.
	ExistingNone ExistingResourcePolicy = "none"
	// ExistingUpdate patches it to the backed-up object.
	ExistingUpdate ExistingResourcePolicy = "update"
)

// RestoreSpec restores a backup into an attached cluster: the one it was
// taken of, or another (a migration). It cannot change once made.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a restore's spec cannot change: create another restore"
type RestoreSpec struct {
	// BackupName is the backup to restore: a Backup on the hub or, with
	// Location, a backup in that location the hub does not know (one
	// Velero wrote, say).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	BackupName string `json:"backupName"`
	// Location, if set, reads the backup from this BackupLocation by name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Location string `json:"location,omitempty"`
	// Cluster is the attached cluster to restore into.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Cluster        string `json:"cluster"`
	ResourceFilter `json:",inline"`
	// NamespaceMapping restores namespace old into new.
	// +kubebuilder:validation:MaxProperties=256
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",message="namespaceMapping keys must be namespace names"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k] != k)",message="namespaceMapping maps a namespace to itself"
	// +optional
	NamespaceMapping map[string]NamespaceName `json:"namespaceMapping,omitempty"`
	// ExistingResourcePolicy: none (default) skips objects the cluster
	// has; update patches them.
	// +kubebuilder:default=none
	// +optional
	ExistingResourcePolicy ExistingResourcePolicy `json:"existingResourcePolicy,omitempty"`
}

// NamespaceName is a namespace's name.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type NamespaceName string

// RestoreStatus is a restore's progress and result.
type RestoreStatus struct {
	JobProgress `json:",inline"`
	// Checksum is what the archive must hash to, "sha256:HEX", when the
	// backup recorded one (Flotilla's do; Velero's do not).
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Restore restores a backup into a cluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.spec.backupName`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Restored",type=integer,JSONPath=`.status.itemsDone`
// +kubebuilder:printcolumn:name="Skipped",type=integer,JSONPath=`.status.itemsSkipped`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec RestoreSpec `json:"spec"`
	// +optional
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}
