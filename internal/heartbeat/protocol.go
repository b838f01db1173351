// Package heartbeat is the hub↔agent liveness protocol. Agents POST a small
// report over mutual TLS every interval; the hub keeps the last one of each
// cluster in memory and writes a Cluster's status only when what it says
// changes (or every RefreshEvery, to refresh lastHeartbeatTime). Liveness
// thus costs no etcd write, which is what lets one hub serve 10,000 clusters:
// heartbeats as Lease updates would need 1,000 writes/s at that size.
package heartbeat

import (
	"net/http"
	"time"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Path is where the hub receives reports.
const Path = "/v1/heartbeat"

// DefaultInterval between heartbeats.
const DefaultInterval = 10 * time.Second

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
}

// Response is the hub's answer.
type Response struct {
	// Detach asks the agent to clean up its cluster and stop.
	Detach bool `json:"detach,omitempty"`
	// Changes is the cluster's change token (see ChangesPath): an agent
	// whose last fetch was at another token fetches again, so a lost poll
	// delays a change by one interval at most.
	Changes string `json:"changes,omitempty"`
}

// ChangesResponse answers a poll of ChangesPath.
type ChangesResponse struct {
	Token string `json:"token"`
}

// LongPoll is how long the hub holds a poll that sees no change.
const LongPoll = 2 * time.Minute

// ConnConfig configures HTTP/2 for the hub↔agent connections, on both ends:
// pings find a dead peer, and small header tables save memory. Each
// connection's header compression tables would otherwise fill to 4 KB per
// direction with poll paths and dates that never repeat: at 10,000 agents,
// 80 MB of hub memory to save a few dozen bytes per request.
func ConnConfig() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxDecoderHeaderTableSize: 512,
		MaxEncoderHeaderTableSize: 512,
		SendPingTimeout:           30 * time.Second,
		PingTimeout:               15 * time.Second,
	}
}
