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

// AgentCSRPrefix begins the name of every certificate request a cluster's
// agent makes; the hub finds a cluster's requests by it.
func AgentCSRPrefix(cluster string) string { return "flotilla-agent-" + cluster + "-" }
