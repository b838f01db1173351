package tunnel

import (
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/yamux"
)

// Serve serves h on the agent's side of a tunnel, conn, until the hub closes
// it, the tunnel carries no request for IdleTimeout, or stop is closed.
func Serve(conn io.ReadWriteCloser, h http.Handler, stop <-chan struct{}) error {
	c := config(true)
	// Streams are accepted as they come; the hub opens one per request.
	c.AcceptBacklog = 16
	sess, err := yamux.Server(conn, c)
	if err != nil {
		conn.Close()
		return err
	}
	defer sess.Close()
	go closeWhenIdle(sess, IdleTimeout, stop)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	err = srv.Serve(sess)
	if sess.IsClosed() {
		return nil
	}
	return err
}

// closeWhenIdle closes sess once it has had no stream for idle.
func closeWhenIdle(sess *yamux.Session, idle time.Duration, stop <-chan struct{}) {
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
			if sess.NumStreams() > 0 {
				last = time.Now()
			} else if time.Since(last) >= idle {
				sess.Close()
				return
			}
		}
	}
}
