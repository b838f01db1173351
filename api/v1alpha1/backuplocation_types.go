package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocationType is where a BackupLocation keeps archives.
// +kubebuilder:validation:Enum=hub;s3
type LocationType string

// Location types.
const (
	// LocationHub keeps archives under the hub's data dir; agents upload
	// and download them over their mutual-TLS connection to the hub.
	LocationHub LocationType = "hub"
	// LocationS3 keeps archives in an S3 bucket; agents reach it directly.
	LocationS3 LocationType = "s3"
)

// DefaultLocation is the hub location the hub creates, assigned to the
// organization: backups work with no configuration.
const DefaultLocation = "default"

// S3 credentials Secret keys, in the hub's system namespace.
const (
	S3AccessKeyID     = "accessKeyID"
	S3SecretAccessKey = "secretAccessKey"
	S3SessionToken    = "sessionToken"
)

// S3Location is an S3 bucket (AWS or any S3-compatible store).
type S3Location struct {
	// Endpoint is the store's host[:port] or URL; empty means AWS.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Bucket holds the archives.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	Bucket string `json:"bucket"`
	// Prefix is the folder in the bucket under which backups/ lives.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([^/]+(/[^/]+)*)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Region of the bucket.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Region string `json:"region,omitempty"`
	// PathStyle addresses the bucket in the path, not the host name
	// (most S3-compatible stores want it).
	// +optional
	PathStyle bool `json:"pathStyle,omitempty"`
	// CABundle is PEM of the roots the endpoint's certificate chains to,
	// when they are not the system's.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	CABundle string `json:"caBundle,omitempty"`
	// CredentialsSecret names a Secret in the hub's flotilla-system
	// namespace with keys accessKeyID, secretAccessKey and optionally
	// sessionToken. Only agents whose clusters use the location get it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	CredentialsSecret string `json:"credentialsSecret"`
}

// LocationAssignment says whose default location this is. A cluster's
// backups go to the location assigned to the cluster, else to its group,
// else to the organization.
// +kubebuilder:validation:XValidation:rule="[has(self.organization) && self.organization, has(self.clusterGroup), has(self.cluster)].filter(x, x).size() <= 1",message="assign a location to at most one of: organization, clusterGroup, cluster"
type LocationAssignment struct {
	// +optional
	Organization bool `json:"organization,omitempty"`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ClusterGroup string `json:"clusterGroup,omitempty"`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Cluster string `json:"cluster,omitempty"`
}

// BackupLocationSpec is where archives are kept.
// +kubebuilder:validation:XValidation:rule="(self.type == 's3') == has(self.s3)",message="spec.s3 is required when type is s3, and only then"
type BackupLocationSpec struct {
	// Type is hub or s3.
	Type LocationType `json:"type"`
	// +optional
	S3 *S3Location `json:"s3,omitempty"`
	// AssignedTo makes this the default location of the organization, a
	// group or a cluster.
	// +optional
	AssignedTo *LocationAssignment `json:"assignedTo,omitempty"`
}

// BackupLocationStatus says whether the location can be used.
type BackupLocationStatus struct {
	// Backups counts the Backups on the hub stored here; a location that
	// holds any is deleted only with the annotation flotilla.dev/force-delete.
	// +optional
	Backups int32 `json:"backups"`
	// Unknown names the backups the location holds (their metadata is
	// there) that the hub has no Backup for: written by Velero or by
	// another hub. Restore one with spec.location set on the Restore.
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Unknown []string `json:"unknown,omitempty"`
	// LastChecked is when the hub last reached the location.
	// +optional
	LastChecked *metav1.Time `json:"lastChecked,omitempty"`
	// Conditions: Available.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AnnotationForceDelete lets a BackupLocation that still holds backups be
// deleted; the archives stay in the store.
const AnnotationForceDelete = "flotilla.dev/force-delete"

// AnnotationCheck, set to an RFC 3339 time, asks the hub to check the
// location (and list what it holds) unless it has since that time.
const AnnotationCheck = "flotilla.dev/check"

// ConditionAvailable says whether a location answers.
const ConditionAvailable = "Available"

// BackupLocation is a store for backup archives.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Backups",type=integer,JSONPath=`.status.backups`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupLocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BackupLocationSpec `json:"spec"`
	// +optional
	Status BackupLocationStatus `json:"status,omitempty"`
}

// BackupLocationList is a list of BackupLocations.
// +kubebuilder:object:root=true
type BackupLocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupLocation `json:"items"`
}
