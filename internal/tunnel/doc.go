// Package tunnel carries requests from the hub to a cluster's apiserver over
// a connection the cluster's agent dials out to the hub, so that the hub
// reaches clusters behind NAT or a firewall without a route to them.
//
// A tunnel is opened on demand: the hub asks the agent on its heartbeat
// stream, the agent dials the hub's agent endpoint and upgrades the
// connection, and the two ends run a yamux session over it. Each request
// the hub sends is one yamux stream carrying one HTTP/1.1 exchange (upgrades
// such as exec included), so requests are multiplexed with a flow-control
// window of their own: a slow client stalls only its own stream. The agent
// closes a tunnel that carried nothing for IdleTimeout, so an idle fleet
// holds no tunnels at all.
package tunnel

import (
	"io"
	"time"

	"github.com/hashicorp/yamux"
)

// IdleTimeout is how long a tunnel stays open without a request.
const IdleTimeout = 5 * time.Minute

// config is the yamux configuration of both ends. Only the agent sends
// keepalives: a dead hub or path then ends the agent's side within
// a keepalive interval and a write timeout, and the hub's side ends when the
// agent's connection does.
func config(keepalive bool) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = keepalive
	c.KeepAliveInterval = 15 * time.Second
	c.ConnectionWriteTimeout = 10 * time.Second
	c.LogOutput = io.Discard
	return c
}
