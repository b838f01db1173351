package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduleSpec makes backups of a cluster, or of every member of a group,
// on a cron schedule.
// +kubebuilder:validation:XValidation:rule="has(self.cluster) != has(self.clusterGroup)",message="set exactly one of cluster and clusterGroup"
type ScheduleSpec struct {
	// Schedule is a cron expression of five fields ("0 2 * * *"), or a
	// descriptor such as @daily.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[^ ]+( +[^ ]+){4})$')",message="schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\") or a descriptor such as @daily"
	Schedule string `json:"schedule"`
	// TimeZone the schedule is read in (an IANA name); default UTC.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Paused makes no backups until unset.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Cluster to back up.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Cluster string `json:"cluster,omitempty"`
	// ClusterGroup: one backup per member cluster at each tick; members
	// that join are picked up at the next.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ClusterGroup string `json:"clusterGroup,omitempty"`
	// Template is each backup's filter, TTL (its retention) and location.
	// +optional
	Template BackupTemplate `json:"template,omitempty"`
}

// ScheduleStatus says when the schedule last and next runs.
type ScheduleStatus struct {
	// LastBackup is when the last tick made its backups.
	// +optional
	LastBackup *metav1.Time `json:"lastBackup,omitempty"`
	// NextBackup is the next tick.
	// +optional
	NextBackup *metav1.Time `json:"nextBackup,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (reason InvalidSchedule when the cron expression
	// or time zone cannot be read).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Schedule makes Backups periodically.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40",message="schedule name must be a DNS-1123 label of at most 40 characters (its backups are named after it)"
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=`.status.lastBackup`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Schedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ScheduleSpec `json:"spec"`
	// +optional
	Status ScheduleStatus `json:"status,omitempty"`
}

// ScheduleList is a list of Schedules.
// +kubebuilder:object:root=true
type ScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Schedule `json:"items"`
}
