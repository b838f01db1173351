package v1alpha1

import "strings"

// Names shared by the hub and the agents it registers.
const (
	// LabelCluster names the cluster an object on the hub belongs to.
	LabelCluster = "flotilla.dev/cluster"
	// AgentUserPrefix prefixes a registered agent's user name on the hub:
	// flotilla:cluster:NAME.
	AgentUserPrefix = "flotilla:cluster:"
	// AgentGroup is the group of every registered agent.
	AgentGroup = "flotilla:clusters"
	// AttachGroupPrefix prefixes the second group of an agent certificate,
	// flotilla:attach:UID, which ties it to one attach of its cluster: UID
	// is the Cluster's. A detach deletes the Cluster, so a later attach of
	// the same name has another UID, and the hub's RBAC binding, stream and
	// renewal review refuse every certificate of the earlier attach.
	AttachGroupPrefix = "flotilla:attach:"
	// AnnotationNameOnlyIdentity marks a Cluster attached by a Flotilla
	// version whose agent certificates carried no attach group: the hub
	// keeps accepting them (and renewing them as they are) for that attach.
	// Any later attach of the name is bound to its own UID.
	AnnotationNameOnlyIdentity = "flotilla.dev/name-only-identity"
	// AgentNamespaceRole is the ClusterRole each cluster's agent is bound to
	// in its hub namespace, and only there.
	AgentNamespaceRole = "flotilla:agent-namespace"
	// BootstrapGroup is the extra group of every bootstrap token Flotilla issues.
	BootstrapGroup = "system:bootstrappers:flotilla"
	// DetachFinalizer holds a Cluster until its agent has cleaned up.
	DetachFinalizer = "flotilla.dev/detach"
	// AnnotationForceDetach on a Cluster being deleted skips the agent's cleanup.
	AnnotationForceDetach = "flotilla.dev/force-detach"
	// HubInfoConfigMap in HubInfoNamespace tells every agent where to send
	// heartbeats. It is the same for all clusters, so the hub keeps one.
	HubInfoConfigMap = "hub-info"
	// HubInfoNamespace is the hub's system namespace, where every agent may
	// read HubInfoConfigMap and nothing else.
	HubInfoNamespace = "flotilla-system"
	// ReadOnlyAgentRole names the ClusterRole, and its ClusterRoleBinding,
	// that grant the agent of a cluster attached read-only (spec.readOnly)
	// get, list and watch in its cluster, and nothing more.
	ReadOnlyAgentRole = "flotilla-agent-read-only"
)

// Cluster condition types set during registration and detach.
const (
	// ClusterConditionRegistered: an agent holds a signed identity for the cluster.
	ClusterConditionRegistered = "Registered"
	// ClusterConditionBootstrapRefused: the last registration attempt was refused.
	ClusterConditionBootstrapRefused = "BootstrapRefused"
	// ClusterConditionDetached: the agent removed what Flotilla created in the cluster.
	ClusterConditionDetached = "Detached"
)

// HubNamespace is the hub namespace holding a cluster's desired state.
func HubNamespace(cluster string) string { return hubNamespacePrefix + cluster }

// ClusterOfHubNamespace names the cluster whose hub namespace ns is.
func ClusterOfHubNamespace(ns string) string { return strings.TrimPrefix(ns, hubNamespacePrefix) }

const hubNamespacePrefix = "cluster-"

// AgentUser is the hub user name of a cluster's agent.
func AgentUser(cluster string) string { return AgentUserPrefix + cluster }

// AttachGroup is the group that ties an agent certificate to the attach of
// the Cluster whose UID is uid.
func AttachGroup(uid string) string { return AttachGroupPrefix + uid }

// AttachOf returns the attach UID among a certificate's organizations
// (groups), or "" when it names none.
func AttachOf(orgs []string) string {
	for _, o := range orgs {
		if uid, ok := strings.CutPrefix(o, AttachGroupPrefix); ok {
			return uid
		}
	}
	return ""
}

// AgentCSRPrefix begins the name of every certificate request a cluster's
// agent makes; the hub finds a cluster's requests by it.
func AgentCSRPrefix(cluster string) string { return "flotilla-agent-" + cluster + "-" }

// AgentCSRClusterIndex is the field index the hub's cache keeps on agent
// certificate requests: the cluster their subject names. Listing one
// cluster's requests through it costs what they are, not what every
// cluster's are.
const AgentCSRClusterIndex = "agentCluster"
