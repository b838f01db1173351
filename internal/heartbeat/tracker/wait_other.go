//go:build !unix

package tracker

import "net"

// readable is nil here: a stream waits in its decoder's read.
func readable(net.Conn) func() error { return nil }
