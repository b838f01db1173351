package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// InsightKind says what an insight reports.
// +kubebuilder:validation:Enum=Violation;AuditHit;QuotaWarning;QuotaExceeded;SyncError;KindNotServed;NotEnforced
type InsightKind string

// Insight kinds.
const (
	// InsightViolation: an object the cluster admitted before an enforcing
	// policy existed breaks it; the cluster would reject it today.
	InsightViolation InsightKind = "Violation"
	// InsightAuditHit: an object breaks an audit-mode policy, which admitted it.
	InsightAuditHit InsightKind = "AuditHit"
	// InsightQuotaWarning: a namespace uses at least 80% of a quota.
	InsightQuotaWarning InsightKind = "QuotaWarning"
	// InsightQuotaExceeded: a namespace uses all of a quota.
	InsightQuotaExceeded InsightKind = "QuotaExceeded"
	// InsightSyncError: the agent could not apply what a policy needs.
	InsightSyncError InsightKind = "SyncError"
	// InsightKindNotServed: a policy matches a kind the cluster does not
	// serve, so it governs nothing of that kind there.
	InsightKindNotServed InsightKind = "KindNotServed"
	// InsightNotEnforced: the policy applies to the cluster but is not
	// enforced there; Reason says why (ReadOnlyAttach: the cluster is
	// attached read-only, so the agent may not create what it needs).
	InsightNotEnforced InsightKind = "NotEnforced"
)

// MaxInsights bounds the insights one cluster reports; the count of all of
// them is kept.
const MaxInsights = 100

// Insight is one finding of an agent about one policy in its cluster.
type Insight struct {
	// Policy the finding is about; empty when it cannot be told.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Policy string `json:"policy,omitempty"`
	// Type of that policy.
	// +optional
	Type PolicyType  `json:"type,omitempty"`
	Kind InsightKind `json:"kind"`
	// Reason is a machine-readable CamelCase word for why, where the kind
	// needs one: ReadOnlyAttach for NotEnforced.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// Namespace of the object.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Object is KIND/NAME of what the finding is about.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Object string `json:"object,omitempty"`
	// Message says what is wrong.
	// +kubebuilder:validation:MaxLength=2048
	Message string `json:"message"`
}

// ClusterPolicyStatus is what an agent reports of the policies in its cluster.
type ClusterPolicyStatus struct {
	// Synced is "True" when the cluster holds everything its policies need.
	// +kubebuilder:validation:Enum=True;False
	// +optional
	Synced string `json:"synced,omitempty"`
	// Objects the agent applied for policies.
	// +optional
	Objects int32 `json:"objects,omitempty"`
	// Violations counts every violation and audit hit found, also those
	// beyond the insights listed.
	// +optional
	Violations int32 `json:"violations,omitempty"`
	// Insights are the findings, at most MaxInsights of them.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Insights []Insight `json:"insights,omitempty"`
	// Audited maps each audit-mode policy the insights fully cover to the
	// generation they cover: a preview of that policy is complete for this
	// cluster when the generation is the policy's.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Audited map[string]int64 `json:"audited,omitempty"`
	// LastChangeTime is when the report last changed.
	// +optional
	LastChangeTime *metav1.Time `json:"lastChangeTime,omitempty"`
}
