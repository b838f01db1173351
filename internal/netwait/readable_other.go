//go:build !unix

package netwait

import "net"

// TLS is nil here: a connection is waited on by reading it.
func TLS(net.Conn) func() error { return nil }
