//go:build !unix

package tracker

import "net"

// readableTLS is nil here: a stream waits in its decoder's read.
func readableTLS(net.Conn) func() error { return nil }
