package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// OpenTimeout bounds how long a request waits for an agent to open its tunnel.
const OpenTimeout = 5 * time.Second

// askedFor is how long after asking the hub takes an agent's tunnel: one the
// hub did not ask for is refused.
const askedFor = time.Minute

var (
	// ErrNotConnected: the cluster's agent holds no stream to this hub.
	ErrNotConnected = errors.New("the cluster's agent is not connected to the hub")
	// ErrNoTunnel: the agent was asked but opened no tunnel in time.
	ErrNoTunnel = errors.New("the cluster's agent did not open its tunnel")
	// ErrNotAsked: an agent opened a tunnel the hub did not ask for.
	ErrNotAsked = errors.New("the hub did not ask this cluster's agent for a tunnel")
)

// Hub is the hub's side: the open tunnel of each cluster, and the ones
// asked for.
type Hub struct {
	// Ask asks cluster's agent to open its tunnel; false when the agent
	// holds no stream to this hub.
	Ask func(cluster string) bool

	mu      sync.Mutex
	tunnels map[string]*hubTunnel
	// transport carries every cluster's requests: it dials a stream of
	// the tunnel of the cluster a request's host names, and keeps a few
	// open between the requests of a burst.
	transport *http.Transport
}

// hubTunnel is one cluster's tunnel, open or asked for.
type hubTunnel struct {
	asked  time.Time
	open   chan struct{} // closed once sess is set
	sess   *hubSession
	taking bool // a connection is being made its tunnel
}

// NewHub returns a Hub that asks agents for tunnels with ask.
func NewHub(ask func(cluster string) bool) *Hub {
	h := &Hub{Ask: ask, tunnels: map[string]*hubTunnel{}}
	h.transport = &http.Transport{
		DialContext:         h.dial,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     5 * time.Second,
		DisableCompression:  true,
	}
	return h
}

// RoundTripper returns a transport to cluster's apiserver through its
// tunnel, for requests whose host is the cluster's name, asking its agent
// to open one if none is open and waiting at most OpenTimeout (or until
// ctx ends) for it.
func (h *Hub) RoundTripper(ctx context.Context, cluster string) (http.RoundTripper, error) {
	h.mu.Lock()
	t := h.tunnels[cluster]
	if t == nil || (t.sess == nil && time.Since(t.asked) > OpenTimeout) {
		// Ask again: the agent may have missed it, or restarted since.
		if !h.Ask(cluster) {
			h.mu.Unlock()
			return nil, ErrNotConnected
		}
		if t == nil {
			t = &hubTunnel{open: make(chan struct{})}
			h.tunnels[cluster] = t
		}
		t.asked = time.Now()
	}
	h.mu.Unlock()
	timer := time.NewTimer(OpenTimeout)
	defer timer.Stop()
	select {
	case <-t.open:
		return h.transport, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w within %s", ErrNoTunnel, OpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial opens a stream of the tunnel of the cluster addr names.
func (h *Hub) dial(_ context.Context, _, addr string) (net.Conn, error) {
	cluster, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	t := h.tunnels[cluster]
	h.mu.Unlock()
	if t == nil || t.sess == nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, ErrNoTunnel)
	}
	return t.sess.open()
}

// Asked reports whether the hub is waiting for cluster's tunnel: it asked
// the agent lately, and no tunnel has come since.
func (h *Hub) Asked(cluster string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tunnels[cluster].pending()
}

// pending: asked for lately, not open yet.
func (t *hubTunnel) pending() bool {
	return t != nil && t.sess == nil && time.Since(t.asked) <= askedFor
}

// Take makes a tunnel of conn, the connection of cluster's heartbeat stream
// that its agent has just switched (buffered: bytes already read from it
// past the switch), and returns the connection the heartbeat stream goes on
// over. Closing that closes the tunnel too. Only the tunnel the hub is
// waiting for is taken: once one is open, another (a second holder of the
// agent's identity, say) is refused, so none can take the requests meant
// for the cluster from the tunnel the hub asked for. The hub's end reads
// the connection only while someone waits on it: the heartbeat stream's
// reader, which the hub keeps waiting for the next report, answers the
// agent's keepalives between requests.
func (h *Hub) Take(cluster string, conn net.Conn, buffered []byte) (net.Conn, error) {
	h.mu.Lock()
	t := h.tunnels[cluster]
	ok := t.pending() && !t.taking
	if ok {
		t.taking = true
	}
	h.mu.Unlock()
	if !ok {
		return nil, ErrNotAsked
	}
	// The session ends when the heartbeat stream is closed or the
	// connection fails; the tunnel is then forgotten, with no goroutine
	// of the hub's own to watch it.
	sess := newHubSession(conn, buffered, func() { h.forget(cluster, t) })
	hb, err := sess.open()
	h.mu.Lock()
	t.taking = false
	if err == nil {
		t.sess = sess
		close(t.open)
	}
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return hbStream{hb}, nil
}

// forget drops t, cluster's tunnel, once its session has ended.
func (h *Hub) forget(cluster string, t *hubTunnel) {
	h.mu.Lock()
	if h.tunnels[cluster] == t {
		delete(h.tunnels, cluster)
	}
	h.mu.Unlock()
}

// Open counts the clusters whose tunnel is open.
func (h *Hub) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.tunnels {
		if t.sess != nil {
			n++
		}
	}
	return n
}
