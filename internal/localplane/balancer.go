package localplane

import (
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// balancer is the one local address of a control plane of several
// members: it passes each connection, TLS and all, to the next member that
// serves, so clients keep their certificates and the members see them.
type balancer struct {
	ln   net.Listener
	mu   sync.Mutex
	up   []string // host:port of members that serve
	next atomic.Uint64
}

func listenBalancer(host string, port int) (*balancer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	b := &balancer{ln: ln}
	go b.serve()
	return b, nil
}

func (b *balancer) setBackends(up []string) {
	b.mu.Lock()
	if !slices.Equal(b.up, up) {
		klog.InfoS("balancer: members that serve", "members", up)
	}
	b.up = up
	b.mu.Unlock()
}

// remove takes addr out at once, before its member stops.
func (b *balancer) remove(addr string) {
	b.mu.Lock()
	b.up = slices.DeleteFunc(slices.Clone(b.up), func(a string) bool { return a == addr })
	klog.InfoS("balancer: member out", "member", addr, "members", b.up)
	b.mu.Unlock()
}

func (b *balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.up) == 0 {
		return ""
	}
	return b.up[b.next.Add(1)%uint64(len(b.up))]
}

func (b *balancer) serve() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.pass(conn)
	}
}

// pass joins conn to a serving member, trying each once.
func (b *balancer) pass(conn net.Conn) {
	defer conn.Close()
	var member net.Conn
	for range 3 {
		addr := b.pick()
		if addr == "" {
			return
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			member = c
			break
		}
		klog.V(2).InfoS("balancer: member not reachable", "member", addr, "err", err)
		b.remove(addr)
	}
	if member == nil {
		return
	}
	defer member.Close()
	// Either side ending ends both: a member that stops closes its
	// clients' connections, which then reconnect to another.
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(member, conn)
	go cp(conn, member)
	<-done
}

func (b *balancer) close() { b.ln.Close() }
