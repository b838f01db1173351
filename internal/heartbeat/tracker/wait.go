package tracker

import (
	"net"

	"flotilla.dev/flotilla/internal/netwait"
)

// readable returns a function that waits until conn has bytes to read
// without a buffer or a deep stack, or nil where this cannot be done: a
// stream then waits in its decoder's read. A tunnel's stream waits by
// itself; a TLS connection waits in the poller (package netwait).
func readable(conn net.Conn) func() error {
	if w, ok := conn.(interface{ Wait() error }); ok {
		return w.Wait
	}
	return netwait.TLS(conn)
}
