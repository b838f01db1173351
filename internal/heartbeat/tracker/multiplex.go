package tracker

import (
	"context"
	"encoding/json"
	"net"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"flotilla.dev/flotilla/internal/heartbeat"
)

// multiplex answers an agent's Multiplex report: if the hub is waiting for
// the cluster's tunnel, it writes the last plain message, Multiplexed, and
// goes on over the tunnel made of the stream's connection (package
// heartbeat says how); otherwise it refuses, and the stream goes on plain.
// rest is what was read past the report: the tunnel's first bytes, or the
// plain stream's, which it returns.
func (t *Tracker) multiplex(ctx context.Context, cluster string, out *sender, rest []byte) []byte {
	if t.Tunnels == nil || out.multiplexed || !t.Tunnels.Asked(cluster) {
		// An agent's identity cannot make a tunnel of its own accord.
		out.refuse(ctx, cluster, "this hub did not ask cluster "+cluster+"'s agent for a tunnel")
		return rest
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.err != nil {
		return nil
	}
	out.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if out.err = out.enc.Encode(heartbeat.Message{Multiplexed: true}); out.err != nil {
		out.conn.Close()
		return nil
	}
	// The session reads and writes the connection from now on, with
	// deadlines of its own: the stream's reads set one in the past.
	out.conn.SetDeadline(time.Time{})
	hb, err := t.Tunnels.Take(cluster, out.conn, rest)
	if err != nil {
		// Past the switch: the stream cannot go on plain.
		log.FromContext(ctx).Error(err, "making a tunnel of an agent's stream", "cluster", cluster)
		out.err = err
		out.conn.Close()
		return nil
	}
	out.conn, out.enc, out.multiplexed = hb, json.NewEncoder(hb), true
	return nil
}

// connection is the connection the stream's messages go over.
func (s *sender) connection() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}
