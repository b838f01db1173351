package v1alpha1

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicyType names what a policy governs.
// +kubebuilder:validation:Enum=access;security;image-registry;network;quota;custom;mutation
type PolicyType string

// Policy types.
const (
	PolicyAccess        PolicyType = "access"
	PolicySecurity      PolicyType = "security"
	PolicyImageRegistry PolicyType = "image-registry"
	PolicyNetwork       PolicyType = "network"
	PolicyQuota         PolicyType = "quota"
	PolicyCustom        PolicyType = "custom"
	PolicyMutation      PolicyType = "mutation"
)

// PolicyMode says whether violations are rejected or only reported.
// +kubebuilder:validation:Enum=enforce;audit
type PolicyMode string

// Policy modes.
const (
	ModeEnforce PolicyMode = "enforce"
	ModeAudit   PolicyMode = "audit"
)

// PolicyScope is where in the trees a policy is set; exactly one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.organization) && self.organization, has(self.clusterGroup), has(self.cluster), has(self.workspace), has(self.namespace)].filter(x, x).size() == 1",message="set exactly one scope: organization, clusterGroup, cluster, workspace or namespace"
type PolicyScope struct {
	// Organization applies the policy to every cluster and namespace.
	// +optional
	Organization bool `json:"organization,omitempty"`
	// ClusterGroup applies it to the group's clusters.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ClusterGroup string `json:"clusterGroup,omitempty"`
	// Cluster applies it to one cluster.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Cluster string `json:"cluster,omitempty"`
	// Workspace applies it to the workspace's namespaces in every cluster.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Workspace string `json:"workspace,omitempty"`
	// Namespace applies it to one namespace of one cluster.
	// +optional
	Namespace *NamespaceRef `json:"namespace,omitempty"`
}

// NamespaceRef names a namespace of a cluster.
type NamespaceRef struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Cluster string `json:"cluster"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
}

// Subject is who an access policy grants a role to.
type Subject struct {
	// +kubebuilder:validation:Enum=User;Group;ServiceAccount
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of a ServiceAccount.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// AccessSpec binds subjects to a role.
type AccessSpec struct {
	// Role: cluster-admin, admin, edit, view, or the name of a ClusterRole.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Role string `json:"role"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Subjects []Subject `json:"subjects"`
}

// SecuritySpec sets a Pod Security level, rules of its own, or both.
// +kubebuilder:validation:XValidation:rule="has(self.level) || (has(self.disallowPrivileged) && self.disallowPrivileged) || (has(self.disallowHostNamespaces) && self.disallowHostNamespaces) || (has(self.requireRunAsNonRoot) && self.requireRunAsNonRoot) || (has(self.requireReadOnlyRootFilesystem) && self.requireReadOnlyRootFilesystem) || has(self.capabilities) || has(self.requireRuntimeClass)",message="a security policy needs a level (baseline or restricted) or at least one rule"
type SecuritySpec struct {
	// Level is the Pod Security Standard namespaces must meet.
	// +kubebuilder:validation:Enum=baseline;restricted
	// +optional
	Level string `json:"level,omitempty"`
	// DisallowPrivileged rejects privileged containers.
	// +optional
	DisallowPrivileged bool `json:"disallowPrivileged,omitempty"`
	// DisallowHostNamespaces rejects pods sharing the node's network, PID or IPC namespace.
	// +optional
	DisallowHostNamespaces bool `json:"disallowHostNamespaces,omitempty"`
	// RequireRunAsNonRoot rejects containers not set to run as non-root, by the pod or the container.
	// +optional
	RequireRunAsNonRoot bool `json:"requireRunAsNonRoot,omitempty"`
	// RequireReadOnlyRootFilesystem rejects containers with a writable root filesystem.
	// +optional
	RequireReadOnlyRootFilesystem bool `json:"requireReadOnlyRootFilesystem,omitempty"`
	// Capabilities limits the Linux capabilities containers may add.
	// +optional
	Capabilities *CapabilitiesRule `json:"capabilities,omitempty"`
	// RequireRuntimeClass rejects pods that do not run in this
	// RuntimeClass, such as sandboxed (real nodes' pods under a kernel of
	// their own). Alone in a policy, it may be set on a workspace.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	RequireRuntimeClass string `json:"requireRuntimeClass,omitempty"`
}

// CapabilitiesRule limits added Linux capabilities.
type CapabilitiesRule struct {
	// Allowed capabilities, e.g. NET_BIND_SERVICE; empty allows none.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^[A-Z_]+$`
	// +optional
	Allowed []string `json:"allowed,omitempty"`
}

// ImageRegistrySpec limits where images come from.
type ImageRegistrySpec struct {
	// AllowedRegistries are registry hosts or host/path prefixes images may
	// come from, or patterns over the whole image where * matches anything
	// (registry.example.com/team-*/*); empty allows any.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	AllowedRegistries []string `json:"allowedRegistries,omitempty"`
	// BlockLatest rejects images tagged :latest or not tagged at all.
	// +optional
	BlockLatest bool `json:"blockLatest,omitempty"`
	// RequireDigest rejects images not pinned by @sha256 digest.
	// +optional
	RequireDigest bool `json:"requireDigest,omitempty"`
}

// NetworkSpec picks a NetworkPolicy recipe.
// +kubebuilder:validation:XValidation:rule="(self.recipe == 'custom') == has(self.custom)",message="spec.network.custom is set exactly when the recipe is custom"
type NetworkSpec struct {
	// +kubebuilder:validation:Enum=allow-all;allow-all-egress;deny-all;deny-all-egress;allow-same-namespace;custom
	Recipe string `json:"recipe"`
	// Custom is the NetworkPolicy spec put in every namespace of the recipe custom.
	// +optional
	Custom *networkingv1.NetworkPolicySpec `json:"custom,omitempty"`
}

// QuotaSpec limits what a namespace may request: a preset, or amounts.
// +kubebuilder:validation:XValidation:rule="has(self.preset) != (has(self.cpu) || has(self.memory) || has(self.pods))",message="set either a preset or cpu/memory/pods"
type QuotaSpec struct {
	// +kubebuilder:validation:Enum=small;medium;large
	// +optional
	Preset string `json:"preset,omitempty"`
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	Pods *int64 `json:"pods,omitempty"`
}

// CustomSpec is a validation rule in CEL.
type CustomSpec struct {
	// Expression must be true for an object to be admitted (CEL; object, oldObject, request).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`
	// Message shown when the expression is false.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
	// MatchKinds are the kinds checked, e.g. Pod or apps/Deployment.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	MatchKinds []string `json:"matchKinds"`
}

// MutationSpec changes objects as they are admitted.
// +kubebuilder:validation:XValidation:rule="has(self.addLabels) || has(self.addAnnotations) || has(self.podSecurityContext)",message="a mutation policy needs addLabels, addAnnotations or podSecurityContext"
// +kubebuilder:validation:XValidation:rule="!has(self.podSecurityContext) || !has(self.matchKinds) || self.matchKinds == ['Pod']",message="podSecurityContext applies to pods only; leave matchKinds out or set it to [Pod]"
type MutationSpec struct {
	// MatchKinds are the kinds changed, e.g. Pod or apps/Deployment; default Pod.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	MatchKinds []string `json:"matchKinds,omitempty"`
	// PodSecurityContext fills in fields a pod leaves unset.
	// +optional
	PodSecurityContext *PodSecurityDefaults `json:"podSecurityContext,omitempty"`
	// AddLabels are set on every matched object.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	AddLabels map[string]string `json:"addLabels,omitempty"`
	// AddAnnotations are set on every matched object.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	AddAnnotations map[string]string `json:"addAnnotations,omitempty"`
}

// PodSecurityDefaults are pod security context fields set when a pod leaves them unset.
type PodSecurityDefaults struct {
	// +optional
	RunAsNonRoot *bool `json:"runAsNonRoot,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	FSGroup *int64 `json:"fsGroup,omitempty"`
	// SeccompProfile type for the pod.
	// +kubebuilder:validation:Enum=RuntimeDefault;Unconfined
	// +optional
	SeccompProfile string `json:"seccompProfile,omitempty"`
}

// PolicySpec is one guardrail, set at one place in the trees and inherited below it.
// +kubebuilder:validation:XValidation:rule="self.type != 'access' || has(self.access)",message="an access policy needs spec.access"
// +kubebuilder:validation:XValidation:rule="self.type != 'security' || has(self.security)",message="a security policy needs spec.security"
// +kubebuilder:validation:XValidation:rule="self.type != 'image-registry' || has(self.imageRegistry)",message="an image-registry policy needs spec.imageRegistry"
// +kubebuilder:validation:XValidation:rule="self.type != 'network' || has(self.network)",message="a network policy needs spec.network"
// +kubebuilder:validation:XValidation:rule="self.type != 'quota' || has(self.quota)",message="a quota policy needs spec.quota"
// +kubebuilder:validation:XValidation:rule="self.type != 'custom' || has(self.custom)",message="a custom policy needs spec.custom"
// +kubebuilder:validation:XValidation:rule="self.type != 'mutation' || has(self.mutation)",message="a mutation policy needs spec.mutation"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['quota', 'custom', 'mutation']) || !has(self.scope.workspace) && !has(self.scope.__namespace__)",message="quota, custom and mutation policies may be set on the organization, a cluster group or a cluster"
// +kubebuilder:validation:XValidation:rule="self.type != 'security' || !has(self.scope.__namespace__) && (!has(self.scope.workspace) || has(self.security) && has(self.security.requireRuntimeClass) && !has(self.security.level) && !has(self.security.capabilities) && !(has(self.security.disallowPrivileged) && self.security.disallowPrivileged) && !(has(self.security.disallowHostNamespaces) && self.security.disallowHostNamespaces) && !(has(self.security.requireRunAsNonRoot) && self.security.requireRunAsNonRoot) && !(has(self.security.requireReadOnlyRootFilesystem) && self.security.requireReadOnlyRootFilesystem))",message="security policies may be set on the organization, a cluster group or a cluster; on a workspace, only one that requires a runtime class and nothing else"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['image-registry', 'network']) || (has(self.scope.organization) && self.scope.organization) || has(self.scope.workspace)",message="image-registry and network policies may be set on the organization or a workspace"
// +kubebuilder:validation:XValidation:rule="!has(self.exemptions) || self.type in ['security', 'image-registry']",message="exemptions are for security and image-registry policies"
// +kubebuilder:validation:XValidation:rule="!has(self.exemptions) || !has(self.exemptions.images) || self.type != 'security' || !has(self.security) || !has(self.security.level)",message="exempt images apply to a security policy's own rules, not to a Pod Security level (Pod Security admission exempts namespaces only): set the level in a policy of its own"
type PolicySpec struct {
	Type PolicyType `json:"type"`
	// Scope is where the policy is set.
	Scope PolicyScope `json:"scope"`
	// Mode: enforce (default) rejects violations; audit admits them, warns and reports.
	// +kubebuilder:default=enforce
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`
	// NamespaceSelector narrows the namespaces the policy applies to.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'] && ((e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0)))",message="each namespaceSelector expression needs operator In or NotIn with values, or Exists or DoesNotExist without"
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// +optional
	Access *AccessSpec `json:"access,omitempty"`
	// +optional
	Security *SecuritySpec `json:"security,omitempty"`
	// +optional
	ImageRegistry *ImageRegistrySpec `json:"imageRegistry,omitempty"`
	// +optional
	Network *NetworkSpec `json:"network,omitempty"`
	// +optional
	Quota *QuotaSpec `json:"quota,omitempty"`
	// +optional
	Custom *CustomSpec `json:"custom,omitempty"`
	// +optional
	Mutation *MutationSpec `json:"mutation,omitempty"`
	// Exemptions are images and namespaces a security or image-registry
	// policy leaves alone.
	// +optional
	Exemptions *Exemptions `json:"exemptions,omitempty"`
}

// Exemptions are what a policy does not judge.
type Exemptions struct {
	// Images exempt from the policy: exact references
	// (registry.example.com/tools/debug:1.2), or prefixes ending in *
	// (registry.example.com/tools/*).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.all(i, !i.contains('*') || (i.endsWith('*') && i.indexOf('*') == size(i) - 1))",message="an exempt image is an exact reference or a prefix ending in a single *"
	// +listType=set
	// +optional
	Images []string `json:"images,omitempty"`
	// Namespaces exempt from the policy, by name.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
}

// PolicyStatus reports where the policy applies and how the clusters comply.
type PolicyStatus struct {
	// Clusters the policy applies to.
	// +optional
	Clusters int32 `json:"clusters,omitempty"`
	// Noncompliant counts the clusters reporting a violation, audit hit or
	// sync error of the policy.
	// +optional
	Noncompliant int32 `json:"noncompliant,omitempty"`
	// Violations counts the violations and audit hits the clusters report.
	// +optional
	Violations int32 `json:"violations,omitempty"`
	// ObservedGeneration is the generation the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Preview of an audit-mode policy: the existing objects it would
	// reject if enforced, cluster by cluster.
	// +optional
	Preview *PolicyPreview `json:"preview,omitempty"`
	// Conditions: Ready, Compliant, Enforced (False, reason ReadOnlyAttach,
	// while a cluster it applies to is attached read-only).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PolicyPreview is what an audit-mode policy would reject if it were enforced.
type PolicyPreview struct {
	// Generation of the policy the preview is of.
	Generation int64 `json:"generation"`
	// Clusters the policy applies to, leaving out those attached
	// read-only, which enforce no policy.
	Clusters int32 `json:"clusters"`
	// Reported counts the clusters whose agents have checked every object
	// the policy governs against this generation.
	Reported int32 `json:"reported"`
	// Rejected counts the objects the policy would reject, in every cluster.
	Rejected int32 `json:"rejected"`
	// Results per cluster with objects the policy would reject, at most
	// MaxPreviewClusters of them.
	// +kubebuilder:validation:MaxItems=100
	// +listType=map
	// +listMapKey=cluster
	// +optional
	Results []ClusterPreview `json:"results,omitempty"`
}

// Bounds of a preview on a Policy's status.
const (
	MaxPreviewClusters = 100
	MaxPreviewObjects  = 20
)

// ClusterPreview is what a policy would reject in one cluster.
type ClusterPreview struct {
	// +kubebuilder:validation:MaxLength=63
	Cluster string `json:"cluster"`
	// Rejected counts the objects, also those beyond the ones listed.
	Rejected int32 `json:"rejected"`
	// Objects the policy would reject, at most MaxPreviewObjects.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	Objects []PreviewObject `json:"objects,omitempty"`
}

// PreviewObject is one object a policy would reject, and why.
type PreviewObject struct {
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Object is KIND/NAME.
	// +kubebuilder:validation:MaxLength=512
	Object string `json:"object"`
	// +kubebuilder:validation:MaxLength=2048
	Message string `json:"message"`
}

// Policy is a guardrail set once at the organization, a cluster group, a
// cluster, a workspace or a namespace, and enforced by each member cluster's
// own apiserver.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=flotilla
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=`.status.clusters`
// +kubebuilder:printcolumn:name="Noncompliant",type=integer,JSONPath=`.status.noncompliant`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violations`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicySpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// PolicyList is a list of Policies.
// +kubebuilder:object:root=true
type PolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Policy `json:"items"`
}
