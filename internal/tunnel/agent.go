package tunnel

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// acceptBacklog is how many streams the hub opens that the agent has not
// accepted yet, at most: the agent's session resets any more.
const acceptBacklog = 16

// acceptTimeout bounds the wait for the hub's first stream, which it opens
// as it switches.
const acceptTimeout = 10 * time.Second

// Agent makes the agent's side of a tunnel of conn, the connection of its
// heartbeat stream that the hub has just switched (buffered: bytes already
// read from it past the switch). It returns the connection the heartbeat
// stream goes on over, and serves h on the streams the hub opens until the
// hub closes the connection, the tunnel carries no request for IdleTimeout,
// or stop is closed. Closing the returned connection ends the tunnel.
func Agent(conn io.ReadWriteCloser, buffered []byte, h http.Handler, stop <-chan struct{}) (io.ReadWriteCloser, error) {
	c := config()
	// Streams are accepted as they come; the hub opens one per request,
	// with at most a backlog's waiting.
	c.AcceptBacklog = acceptBacklog
	sess, err := yamux.Server(withBuffered(conn, buffered), c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), acceptTimeout)
	defer cancel()
	hb, err := sess.AcceptStreamWithContext(ctx)
	if err != nil {
		sess.Close()
		return nil, err
	}
	s := &stream{Stream: hb, sess: sess}
	go closeWhenIdle(sess, IdleTimeout, stop, &s.idle)
	go (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(sess)
	return s, nil
}

// ErrIdle ends an agent's heartbeat stream whose tunnel carried no request
// for IdleTimeout: the agent opens its stream again, without a tunnel.
var ErrIdle = fmt.Errorf("the tunnel carried no request for %s and was closed; the stream goes on over a new connection", IdleTimeout)

// closeWhenIdle closes sess once it has carried no request (no stream but
// the heartbeat's) for idle, and says so in closedIdle.
func closeWhenIdle(sess *yamux.Session, idle time.Duration, stop <-chan struct{}, closedIdle *atomic.Bool) {
	tick := time.NewTicker(idle / 10)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			sess.Close()
			return
		case <-sess.CloseChan():
			return
		case <-tick.C:
			if sess.NumStreams() > 1 {
				last = time.Now()
			} else if time.Since(last) >= idle {
				closedIdle.Store(true)
				sess.Close()
				return
			}
		}
	}
}
