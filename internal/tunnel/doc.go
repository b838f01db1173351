// Package tunnel carries requests from the hub to a cluster's apiserver over
// the connection the cluster's agent holds open to the hub for its heartbeat
// stream, so that the hub reaches clusters behind NAT or a firewall with no
// route to them, and with no second connection.
//
// A tunnel is made on demand: the hub asks the agent on its stream, and the
// two switch the stream's connection to a yamux session (package heartbeat
// says how). The session's first stream, which the hub opens, carries the
// heartbeat stream on; each other stream the hub opens carries one HTTP/1.1
// exchange (upgrades such as exec included), so requests are multiplexed,
// each with a flow-control window of its own: a slow client stalls only its
// own stream. Streams the agent opens are refused: an agent's identity
// cannot act on the hub through its tunnel. The agent's end is a
// hashicorp/yamux session; the hub's (hubSession) speaks the same framing
// with no goroutine of its own, so that an open tunnel costs the hub little
// more than its heartbeat stream did. The agent closes a session that
// carried no request for IdleTimeout, and its heartbeat stream goes on over
// a new, plain connection: an idle fleet holds no sessions.
package tunnel

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// IdleTimeout is how long a tunnel stays open without a request.
const IdleTimeout = 5 * time.Minute

// config is the agent's yamux configuration. Only the agent sends
// keepalives, which the hub answers: a dead hub or path then ends the
// agent's side within a keepalive interval and a write timeout, and the
// hub's side ends when the agent's connection does.
func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = 15 * time.Second
	c.ConnectionWriteTimeout = writeTimeout
	c.LogOutput = io.Discard
	return c
}

// stream is the agent's end of the heartbeat stream, a yamux stream.
// Closing it closes its session and connection: the heartbeat stream is what
// the connection is for.
type stream struct {
	*yamux.Stream
	sess *yamux.Session
	idle atomic.Bool // the agent closed the session for idleness
}

func (s *stream) Close() error { return s.sess.Close() }

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if err != nil && s.idle.Load() {
		err = ErrIdle
	}
	return n, err
}

// prefix is bytes read from a connection already, to be read again first.
// Once they are read, reads go straight to the connection.
type prefix []byte

func (p *prefix) read(r io.Reader, b []byte) (int, error) {
	if len(*p) == 0 {
		return r.Read(b)
	}
	n := copy(b, *p)
	if *p = (*p)[n:]; len(*p) == 0 {
		*p = nil
	}
	return n, nil
}

// prefixed is a connection whose first bytes were read from it already.
type prefixed struct {
	net.Conn
	p prefix
}

func (c *prefixed) Read(b []byte) (int, error) { return c.p.read(c.Conn, b) }

// prefixedRWC is prefixed for a connection that is not a net.Conn.
type prefixedRWC struct {
	io.ReadWriteCloser
	p prefix
}

func (c *prefixedRWC) Read(b []byte) (int, error) { return c.p.read(c.ReadWriteCloser, b) }

// withBuffered returns conn, reading buffered first.
func withBuffered(conn io.ReadWriteCloser, buffered []byte) io.ReadWriteCloser {
	if len(buffered) == 0 {
		return conn
	}
	if c, ok := conn.(net.Conn); ok {
		return &prefixed{Conn: c, p: buffered}
	}
	return &prefixedRWC{ReadWriteCloser: conn, p: buffered}
}
