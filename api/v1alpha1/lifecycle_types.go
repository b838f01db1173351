package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LifecycleFinalizer holds a provisioned Cluster until its provider has
// removed everything it made for it.
const LifecycleFinalizer = "flotilla.dev/lifecycle"

// Provider makes clusters.
// +kubebuilder:validation:Enum=local;clusterapi
type Provider string

// Providers.
const (
	// ProviderLocal runs a cluster's control plane and simulated nodes as
	// processes on the hub's machine.
	ProviderLocal Provider = "local"
	// ProviderClusterAPI has Cluster API make the cluster on a management
	// cluster, from a ClusterClass (a managed topology).
	ProviderClusterAPI Provider = "clusterapi"
)

// LocalVersions are the Kubernetes versions the local provider runs, as the
// API checks them; internal/kubebin knows how to run each.
var LocalVersions = []string{"v1.36.3", "v1.37.2"}

// ClusterLifecycle is the shape a provider gives a cluster it makes. A
// change to it is carried out: nodes added or drained away, the control
// plane then the nodes upgraded; a deleted Cluster is torn down.
// +kubebuilder:validation:XValidation:rule="self.provider == oldSelf.provider",message="a cluster's provider cannot change"
// +kubebuilder:validation:XValidation:rule="self.controlPlane.replicas == oldSelf.controlPlane.replicas",message="the number of control-plane replicas cannot change after create"
// +kubebuilder:validation:XValidation:rule="self.provider != 'local' || self.version in ['v1.36.3', 'v1.37.2']",messageExpression="'Kubernetes ' + self.version + ' is not a version local clusters run: they run v1.36.3 and v1.37.2 (flotilla versions)'"
// +kubebuilder:validation:XValidation:rule="(self.provider == 'clusterapi') == has(self.clusterAPI)",message="spec.lifecycle.clusterAPI is required when the provider is clusterapi, and only then"
// +kubebuilder:validation:XValidation:rule="!semver(self.version, true).isLessThan(semver(oldSelf.version, true))",messageExpression="'a cluster cannot be downgraded: it runs ' + oldSelf.version + ', and ' + self.version + ' is older'"
// +kubebuilder:validation:XValidation:rule="semver(self.version, true).major() == semver(oldSelf.version, true).major() && semver(self.version, true).minor() <= semver(oldSelf.version, true).minor() + 1",messageExpression="'an upgrade goes one minor version at a time: from ' + oldSelf.version + ' upgrade to the next minor version first'"
// +kubebuilder:validation:XValidation:rule="self.provider == 'local' || !self.nodePools.exists(p, has(p.real) && p.real)",message="real node pools are made by the local provider only"
// +kubebuilder:validation:XValidation:rule="self.nodePools.exists(p, has(p.real) && p.real) == oldSelf.nodePools.exists(p, has(p.real) && p.real)",message="a cluster gets real nodes when it is made: a real pool cannot be added to a cluster made without one, nor the last one removed (scale it to 0)"
type ClusterLifecycle struct {
	// Provider makes the cluster.
	Provider Provider `json:"provider"`

	// Version of Kubernetes, vMAJOR.MINOR.PATCH. Raising it upgrades the
	// control plane, then the nodes one at a time; one minor version at a
	// time, never down.
	// +kubebuilder:validation:Pattern=`^v1\.[0-9]+\.[0-9]+$`
	// +kubebuilder:validation:MaxLength=16
	Version string `json:"version"`

	// ControlPlane is the control plane's shape.
	// +kubebuilder:default={}
	// +optional
	ControlPlane ControlPlane `json:"controlPlane,omitempty"`

	// ClusterAPI says where and from which class Cluster API makes the
	// cluster (provider clusterapi).
	// +optional
	ClusterAPI *ClusterAPITopology `json:"clusterAPI,omitempty"`

	// NodePools are the cluster's worker nodes, by pool.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	NodePools []NodePool `json:"nodePools"`
}

// ClusterAPITopology is where Cluster API makes a cluster.
type ClusterAPITopology struct {
	// KubeconfigSecret names the Secret in the hub's flotilla-system
	// namespace whose key "value" is the management cluster's kubeconfig.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	KubeconfigSecret string `json:"kubeconfigSecret"`
	// Namespace on the management cluster of the cluster.x-k8s.io Cluster.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Class is the ClusterClass of the managed topology.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Class string `json:"class"`
}

// ControlPlane is how many of each control-plane component run.
type ControlPlane struct {
	// Replicas of etcd and kube-apiserver: 1, or 3 for a control plane that
	// keeps answering while one member is down or upgraded.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Enum=1;3
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
}

// NodePool is a set of alike nodes.
type NodePool struct {
	// Name of the pool; its nodes are named CLUSTER-NAME-N.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Replicas is how many nodes the pool has.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas int32 `json:"replicas"`

	// CPU of each node.
	// +kubebuilder:default="4"
	// +optional
	CPU resource.Quantity `json:"cpu,omitempty"`

	// Memory of each node.
	// +kubebuilder:default="16Gi"
	// +optional
	Memory resource.Quantity `json:"memory,omitempty"`

	// Labels put on each node.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Taints put on each node.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`

	// Real nodes run a real kubelet and container runtime, and so run pods
	// for real (provider local, on a Linux host with root; see
	// docs/real-nodes.md); their capacity is the host's, not CPU and
	// Memory. Simulated nodes, the default, only pretend to.
	// +optional
	Real bool `json:"real,omitempty"`

	// Class is the machine deployment class of the pool in the cluster's
	// ClusterClass (provider clusterapi); default: the pool's name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Class string `json:"class,omitempty"`
}

// LifecyclePhase is where a provisioned cluster is in its lifecycle.
// +kubebuilder:validation:Enum=Provisioning;Ready;Scaling;Upgrading;Deleting;Failed
type LifecyclePhase string

// Lifecycle phases; each is also the reason of the lifecycle's Ready
// condition.
const (
	LifecycleProvisioning LifecyclePhase = "Provisioning"
	LifecycleReady        LifecyclePhase = "Ready"
	LifecycleScaling      LifecyclePhase = "Scaling"
	LifecycleUpgrading    LifecyclePhase = "Upgrading"
	LifecycleDeleting     LifecyclePhase = "Deleting"
	LifecycleFailed       LifecyclePhase = "Failed"
)

// LifecycleStatus is what the provider has made of the cluster.
type LifecycleStatus struct {
	// Phase is what the provider is doing.
	// +optional
	Phase LifecyclePhase `json:"phase,omitempty"`
	// Progress says how far the current operation is, for people
	// ("2/3 nodes upgraded").
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Progress string `json:"progress,omitempty"`
	// Endpoint is the address of the cluster's apiserver.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// ControlPlane lists the control-plane components and the version each
	// runs.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ControlPlane []ComponentStatus `json:"controlPlane,omitempty"`
	// NodePools says what each pool's nodes run.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	NodePools []NodePoolStatus `json:"nodePools,omitempty"`
	// ObservedGeneration is the generation of the spec the provider last
	// acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, whose reason is the phase and whose message says
	// what the provider waits for (a PodDisruptionBudget that blocks a
	// drain, say) or why it failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ComponentStatus is one control-plane component.
type ComponentStatus struct {
	// Name, such as kube-apiserver-0.
	// +kubebuilder:validation:MaxLength=64
	Name string `json:"name"`
	// Version it runs.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Version string `json:"version,omitempty"`
	// Ready says it serves.
	Ready bool `json:"ready"`
}

// NodePoolStatus is what one pool's nodes run.
type NodePoolStatus struct {
	// +kubebuilder:validation:MaxLength=20
	Name string `json:"name"`
	// Version of the pool's oldest node.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Version string `json:"version,omitempty"`
	// Replicas is how many nodes the pool has now.
	Replicas int32 `json:"replicas"`
	// Ready nodes.
	Ready int32 `json:"ready"`
	// Updated nodes run the cluster's desired version.
	Updated int32 `json:"updated"`
}
