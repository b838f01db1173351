package testenv

import (
	"io"
	"net"
	"sync"
)

// TCPProxy forwards connections from a port on 127.0.0.1 to a target: the
// network between two parts, as a load balancer or NAT would stand in it.
type TCPProxy struct {
	Addr   string // where it listens, 127.0.0.1:port
	target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
}

// NewTCPProxy listens on addr (127.0.0.1:0 picks a port) and forwards each
// connection to target.
func NewTCPProxy(addr, target string) (*TCPProxy, error) {
	p := &TCPProxy{target: target, conns: map[net.Conn]bool{}}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.Addr = l.Addr().String()
	p.serve(l)
	return p, nil
}

// Heal listens again on the same address after Close: a network cut by
// Close is restored.
func (p *TCPProxy) Heal() error {
	l, err := net.Listen("tcp", p.Addr)
	if err != nil {
		return err
	}
	p.serve(l)
	return nil
}

// Close closes the listener and every connection through it: both ends
// see their connections reset, and new ones are refused until Heal.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *TCPProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			if !p.track(l, in, out) {
				continue
			}
			go p.pipe(in, out)
			go p.pipe(out, in)
		}
	}()
}

// track records a pair of connections, unless the proxy was closed
// meanwhile.
func (p *TCPProxy) track(l net.Listener, in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != l {
		in.Close()
		out.Close()
		return false
	}
	p.conns[in], p.conns[out] = true, true
	return true
}

func (p *TCPProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
