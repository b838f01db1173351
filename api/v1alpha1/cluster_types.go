package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Health summarises how a cluster is, as the hub last saw it.
// +kubebuilder:validation:Enum=Unknown;Healthy;Unhealthy;Disconnected
type Health string

// Health values.
const (
	// HealthUnknown: the agent has not reported yet.
	HealthUnknown Health = "Unknown"
	// HealthHealthy: the agent reports and every control-plane check passes.
	HealthHealthy Health = "Healthy"
	// HealthUnhealthy: the agent reports a failing component.
	HealthUnhealthy Health = "Unhealthy"
	// HealthDisconnected: the agent missed its heartbeats.
	HealthDisconnected Health = "Disconnected"
)

// Cluster condition types.
const (
	// ClusterConditionAgentConnected: the agent heartbeats in time.
	ClusterConditionAgentConnected = "AgentConnected"
	// ClusterConditionHealthy: every control-plane component reports healthy.
	ClusterConditionHealthy = "Healthy"
)

// ReasonReadOnlyAttach says a policy is not enforced in a cluster because
// the cluster is attached read-only (spec.readOnly): its agent may not
// create the objects the policy needs there.
const ReasonReadOnlyAttach = "ReadOnlyAttach"

// ClusterSpec is what the user declares about a cluster.
type ClusterSpec struct {
	// Group is the ClusterGroup the cluster belongs to.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Group string `json:"group,omitempty"`

	// Description is free text for people.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`

	// Lifecycle, when set, is the shape a provider gives the cluster: it
	// was made by Flotilla, and is scaled, upgraded and deleted by changing
	// this. Unset for a cluster Flotilla only attached.
	// +optional
	Lifecycle *ClusterLifecycle `json:"lifecycle,omitempty"`

	// ReadOnly says the cluster is attached read-only: its agent may get,
	// list and watch what the fleet view needs, and nothing more (the
	// manifest binds it to the ClusterRole flotilla-agent-read-only, not
	// cluster-admin). Flotilla then creates nothing in the cluster: each
	// policy that applies to it is reported not enforced there (reason
	// ReadOnlyAttach). Set by 'flotilla cluster attach --read-only'; it
	// cannot change after the Cluster is created.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// NodeCounts counts a cluster's nodes.
type NodeCounts struct {
	// Total number of nodes.
	Total int32 `json:"total"`
	// Ready nodes.
	Ready int32 `json:"ready"`
}

// Resources is an amount of CPU and memory.
type Resources struct {
	// CPU in cores.
	// +optional
	CPU resource.Quantity `json:"cpu,omitempty"`
	// Memory in bytes.
	// +optional
	Memory resource.Quantity `json:"memory,omitempty"`
}

// ClusterStatus is what the hub knows about a cluster.
type ClusterStatus struct {
	// Health summarises the conditions.
	// +optional
	Health Health `json:"health,omitempty"`
	// Namespace on the hub that holds this cluster's desired state.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// KubernetesVersion the cluster's apiserver reports.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Platform the cluster runs on, e.g. linux/amd64.
	// +optional
	Platform string `json:"platform,omitempty"`
	// AgentVersion is the version of the Flotilla agent in the cluster.
	// +optional
	AgentVersion string `json:"agentVersion,omitempty"`
	// Nodes counts the cluster's nodes.
	// +optional
	Nodes NodeCounts `json:"nodes,omitempty"`
	// Capacity is the sum of the nodes' capacity.
	// +optional
	Capacity Resources `json:"capacity,omitempty"`
	// Allocatable is the sum of the nodes' allocatable resources.
	// +optional
	Allocatable Resources `json:"allocatable,omitempty"`
	// Namespaces in the cluster.
	// +optional
	Namespaces int32 `json:"namespaces,omitempty"`
	// Pods in the cluster.
	// +optional
	Pods int32 `json:"pods,omitempty"`
	// LastHeartbeatTime is when the agent was last heard from.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`
	// ObservedGeneration is the generation the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Policies is what the agent reports of the cluster's policies.
	// +optional
	Policies *ClusterPolicyStatus `json:"policies,omitempty"`
	// AgentCertificate is the certificate the hub last issued the
	// cluster's agent in this attach. Only it may renew the identity, so a
	// copy of an older one cannot fork it.
	// +optional
	AgentCertificate *AgentCertificate `json:"agentCertificate,omitempty"`
	// Lifecycle is what the provider has made of a cluster Flotilla made.
	// +optional
	Lifecycle *LifecycleStatus `json:"lifecycle,omitempty"`
	// Conditions: AgentConnected, Healthy, Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentCertificate describes an agent's current certificate.
type AgentCertificate struct {
	// SHA256 is the hex SHA-256 fingerprint of the certificate (as the
	// apiserver's credential-id names it).
	// +kubebuilder:validation:MaxLength=64
	SHA256 string `json:"sha256"`
	// Issued is the certificate's NotBefore.
	Issued metav1.Time `json:"issued"`
	// NotAfter is when it expires.
	NotAfter metav1.Time `json:"notAfter"`
}

// Cluster is a Kubernetes cluster attached to the fleet.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 55",message="cluster name must be a DNS-1123 label (lower case letters, digits and '-') of at most 55 characters"
// +kubebuilder:validation:XValidation:rule="has(self.spec.lifecycle) == has(oldSelf.spec.lifecycle)",message="spec.lifecycle is set when a cluster is created (flotilla cluster create) and stays: an attached cluster cannot become a provisioned one, nor the reverse"
// +kubebuilder:validation:XValidation:rule="(has(self.spec.readOnly) && self.spec.readOnly) == (has(oldSelf.spec.readOnly) && oldSelf.spec.readOnly)",message="spec.readOnly is set when a cluster is attached (flotilla cluster attach --read-only) and cannot change: to change what its agent may do, detach the cluster and attach it again"
// +kubebuilder:validation:XValidation:rule="!(has(self.spec.readOnly) && self.spec.readOnly && has(self.spec.lifecycle))",message="a cluster Flotilla made (spec.lifecycle) cannot be read-only: Flotilla administers it"
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.group`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.kubernetesVersion`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodes.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Read-only",type=boolean,JSONPath=`.spec.readOnly`,priority=1
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.policies.violations`,priority=1
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.policies.synced`,priority=1
// +kubebuilder:printcolumn:name="Lifecycle",type=string,JSONPath=`.status.lifecycle.phase`,priority=1
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.lifecycle.progress`,priority=1
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec ClusterSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
