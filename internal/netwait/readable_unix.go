//go:build unix

package netwait

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// TLS returns a function that waits until conn has bytes to read, reading
// none, or nil where this cannot be done.
func TLS(conn net.Conn) func() error {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil
	}
	sc, ok := tc.NetConn().(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var buf [1]byte
	return func() error {
		return raw.Read(func(fd uintptr) bool {
			// Peek without blocking: data or end of stream ends the wait;
			// EAGAIN waits for the poller.
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR)
		})
	}
}
