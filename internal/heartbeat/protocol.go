// Package heartbeat is the hub↔agent liveness protocol. Each agent holds one
// stream open to the hub: an HTTP/1.1 request over mutual TLS that upgrades to
// newline-delimited JSON in both directions. The agent sends a Report every
// interval and the hub replies to each; the hub also sends the cluster's
// change token whenever something the agent acts on changes, and the
// cluster's desired policies themselves when they change.
//
// The stream is also how an agent writes its Cluster's status: the hub
// writes it for the cluster the client certificate names. Agents thus need
// no RBAC on Cluster objects, whose rules would be one ClusterRoleBinding
// per cluster, and the apiserver's RBAC authorizer walks every
// ClusterRoleBinding on every request.
//
// A stream costs the hub one goroutine and its TLS connection. The HTTP/2
// heartbeats and long-polls it replaced cost three goroutines, the HTTP/2
// connection state and a parked request: about three times the memory per
// cluster.
//
// The stream's connection also carries the hub's requests to the cluster
// (package tunnel) when the hub needs them: it sends Message.Tunnel; the
// agent, with no report in flight, answers with a Multiplex report and
// writes nothing plain after it; the hub answers with Multiplexed and writes
// nothing plain after that. From those markers on, each way, the connection
// is a yamux session whose first stream, opened by the hub, carries the
// stream's messages. Each side has read everything plain the other wrote
// before the marker, so the switch loses nothing, and a cluster behind NAT
// or a firewall is reached over the one connection its agent dials.
//
// The hub keeps the last report of every cluster in memory and writes a
// Cluster's status only when what it says changes (or every RefreshEvery, to
// refresh lastHeartbeatTime). Liveness thus costs no etcd write, which is what
// lets one hub serve 10,000 clusters: heartbeats as Lease updates would need
// 1,000 writes/s at that size.
package heartbeat

import (
	"encoding/json"
	"time"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// StreamPath is where an agent opens its stream.
const StreamPath = "/v1/stream"

// Protocol is what a stream's request asks to upgrade to.
const Protocol = "flotilla-heartbeat/1"

// DataPrefix is where agents exchange data with the hub beside their
// stream: plain requests over the same mutual TLS, answered for the cluster
// the client certificate names (backup jobs and archives, package jobs).
const DataPrefix = "/v1/data/"

// DefaultInterval between heartbeats.
const DefaultInterval = 10 * time.Second

// MaxInterval is the longest interval the hub accepts: an agent that claimed
// an hour would have its death hidden for three.
const MaxInterval = 5 * time.Minute

// MissedBeats after which a cluster is Disconnected.
const MissedBeats = 3

// RefreshEvery bounds how stale lastHeartbeatTime may be in a Cluster's status.
const RefreshEvery = 5 * time.Minute

// Report is what an agent says about its cluster.
type Report struct {
	// IntervalSeconds is how often the agent reports.
	IntervalSeconds int `json:"intervalSeconds"`
	// Reachable is false when the agent cannot reach its cluster's apiserver.
	Reachable bool `json:"reachable"`
	// Failing lists failing control-plane checks, as "component: message".
	Failing           []string       `json:"failing,omitempty"`
	KubernetesVersion string         `json:"kubernetesVersion,omitempty"`
	Platform          string         `json:"platform,omitempty"`
	AgentVersion      string         `json:"agentVersion,omitempty"`
	Nodes             fv1.NodeCounts `json:"nodes"`
	Capacity          fv1.Resources  `json:"capacity"`
	Allocatable       fv1.Resources  `json:"allocatable"`
	Namespaces        int32          `json:"namespaces"`
	Pods              int32          `json:"pods"`
	Error             string         `json:"error,omitempty"`
	// Policies is what the agent found about the cluster's policies, sent
	// when it changes until a reply takes it.
	Policies *fv1.ClusterPolicyStatus `json:"policies,omitempty"`
	// Detached says the agent removed what Flotilla created in the cluster.
	Detached bool `json:"detached,omitempty"`
	// Cluster is the cluster the agent reports for. The hub knows the
	// cluster from the stream's certificate and refuses a report that
	// names another: a frame meant for one cluster cannot pass as
	// another's. Empty from agents that predate it, which the hub accepts.
	Cluster string `json:"cluster,omitempty"`
	// Seq numbers the reports of one stream from 1 (Stream.Beat sets it).
	// The hub refuses a report whose Seq is not above the last it took on
	// the stream: a frame replayed into the stream. 0 from agents that
	// predate it, which the hub accepts.
	Seq uint64 `json:"seq,omitempty"`
	// Multiplex asks the hub, which asked for a tunnel, to switch the
	// stream's connection to a yamux session: the agent writes nothing
	// plain after it. Such a report carries nothing else.
	Multiplex bool `json:"multiplex,omitempty"`
}

// Interval is how often the report's agent says it reports, within what the
// hub accepts.
func (r *Report) Interval() time.Duration {
	d := time.Duration(r.IntervalSeconds) * time.Second
	switch {
	case d <= 0:
		return DefaultInterval
	case d > MaxInterval:
		return MaxInterval
	}
	return d
}

// Response is the hub's reply to a report.
type Response struct {
	// Detach asks the agent to clean up its cluster and stop.
	Detach bool `json:"detach,omitempty"`
	// Changes is the cluster's change token: an agent whose last fetch was
	// at another token fetches again.
	Changes string `json:"changes,omitempty"`
	// Error says why the hub could not take the report.
	Error string `json:"error,omitempty"`
	// Retry says why the hub could not store the report's policies or
	// detach this time (the apiserver was unavailable, say); the agent
	// sends them again with its next report.
	Retry string `json:"retry,omitempty"`
	// Refused says why the hub will never store what the report asked it
	// to (its policies, or the health it carries): the hub's API rejects
	// it as it is, so sending it again would only repeat the refusal. The
	// report's heartbeat itself is taken; the agent drops what was
	// refused and logs the reason.
	Refused string `json:"refused,omitempty"`
}

// Message is one line the hub sends on a stream: a reply, or a change token
// sent as soon as it moves.
type Message struct {
	Reply   *Response `json:"reply,omitempty"`
	Changes string    `json:"changes,omitempty"`
	// Closed is why the hub closes the stream, in its last message: a
	// newer stream of the same identity replaced it, say.
	Closed string `json:"closed,omitempty"`
	// Tunnel asks the agent for its tunnel: a user's request for the
	// cluster waits for it. The agent answers by switching the stream's
	// connection to carry the hub's requests too (see Multiplexed).
	Tunnel bool `json:"tunnel,omitempty"`
	// Multiplexed answers an agent's Multiplex report: these are the last
	// plain bytes the hub writes on the connection, which from the next
	// byte on is a yamux session (package tunnel).
	Multiplexed bool `json:"multiplexed,omitempty"`
	// Desired, a Desired, carries the cluster's desired policies when
	// they differ from what the stream last carried: in its first message
	// and whenever they change.
	Desired json.RawMessage `json:"desired,omitempty"`
}

// MinWriteGap is the least time between two status writes the hub makes
// for one cluster's reports. Reports that come faster are coalesced: the
// hub writes the latest once the gap has passed. An agent reports every
// interval (10 s), so it never waits; one identity flooding reports costs
// the hub one write a second, not one per report.
const MinWriteGap = time.Second

// MaxReport bounds one report: a cluster's inventory is a few hundred bytes.
const MaxReport = 64 << 10

// MaxMessage bounds one message from the hub: a reply or a change token is
// a few hundred bytes, desired policies up to the megabyte an object on the
// hub may hold, with room for JSON's escapes.
const MaxMessage = 4 << 20
