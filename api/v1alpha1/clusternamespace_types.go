package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterNamespace values.
const (
	// NamespaceFinalizer holds a ClusterNamespace until its agent has deleted
	// the namespace in the member cluster.
	NamespaceFinalizer = "flotilla.dev/namespace"
	// LabelWorkspace on a member namespace names its workspace.
	LabelWorkspace = "flotilla.dev/workspace"
	// LabelDiscovered marks a ClusterNamespace the agent found in the cluster
	// rather than one created through the hub.
	LabelDiscovered = "flotilla.dev/discovered"
)

// ClusterNamespaceSpec places a namespace of a member cluster in a workspace.
type ClusterNamespaceSpec struct {
	// Workspace the namespace belongs to. A namespace moves to another
	// workspace only by being deleted and created again.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a namespace cannot move to another workspace; delete it and create it again"
	// +optional
	Workspace string `json:"workspace,omitempty"`
}

// ClusterNamespaceStatus is what the agent reports.
type ClusterNamespaceStatus struct {
	// Phase of the namespace in the member cluster.
	// +kubebuilder:validation:Enum=Pending;Active;Terminating
	// +optional
	Phase string `json:"phase,omitempty"`
	// Labels of the namespace in the member cluster; policy namespace
	// selectors match them. Bounded as Kubernetes bounds labels (keys of at
	// most 317 characters, a 253-character prefix and a 63-character name;
	// values of at most 63), and to 128 of them, twice what a namespace
	// rarely exceeds: unbounded, one agent's reports could fill the hub's
	// etcd.
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && size(self[k]) <= 63)",message="a label key is at most 317 characters and a value at most 63, as in Kubernetes"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Conditions: Ready.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClusterNamespace is one namespace of one member cluster, as the hub sees
// it. It lives in the cluster's hub namespace (cluster-NAME) and carries the
// namespace's name. Every namespace of every attached cluster has one.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=flotilla,shortName=cns
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.spec.workspace`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterNamespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec ClusterNamespaceSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterNamespaceStatus `json:"status,omitempty"`
}

// ClusterNamespaceList is a list of ClusterNamespaces.
// +kubebuilder:object:root=true
type ClusterNamespaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterNamespace `json:"items"`
}
