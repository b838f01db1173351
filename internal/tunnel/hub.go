package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
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
}

// hubTunnel is one cluster's tunnel, open or asked for.
type hubTunnel struct {
	asked time.Time
	open  chan struct{} // closed once session is set
	sess  *yamux.Session
	rt    http.RoundTripper
}

// NewHub returns a Hub that asks agents for tunnels with ask.
func NewHub(ask func(cluster string) bool) *Hub {
	return &Hub{Ask: ask, tunnels: map[string]*hubTunnel{}}
}

// RoundTripper returns a transport to cluster's apiserver through its
// tunnel, asking its agent to open one if none is open and waiting at most
// OpenTimeout (or until ctx ends) for it.
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
		return t.rt, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w within %s", ErrNoTunnel, OpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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

// Accept takes conn, an agent's upgraded tunnel connection for cluster, and
// serves it until it closes. Only the tunnel the hub is waiting for is
// taken: once it is open, another (a second holder of the agent's
// identity, say) is refused, so none can take the requests meant for the
// cluster from the tunnel the hub asked for. A refused conn is closed.
func (h *Hub) Accept(cluster string, conn net.Conn) error {
	h.mu.Lock()
	t := h.tunnels[cluster]
	if !t.pending() {
		h.mu.Unlock()
		conn.Close()
		return ErrNotAsked
	}
	c := config(false)
	// The hub accepts no streams (refuseStreams closes each at once).
	c.AcceptBacklog = 1
	sess, err := yamux.Client(conn, c)
	if err != nil {
		h.mu.Unlock()
		conn.Close()
		return err
	}
	t.sess, t.rt = sess, transport(sess)
	close(t.open)
	h.mu.Unlock()

	refuseStreams(sess) // until the session ends
	h.mu.Lock()
	if h.tunnels[cluster] == t {
		delete(h.tunnels, cluster)
	}
	h.mu.Unlock()
	return nil
}

// Close closes cluster's tunnel, if open: its agent was detached, say.
func (h *Hub) Close(cluster string) {
	h.mu.Lock()
	t := h.tunnels[cluster]
	delete(h.tunnels, cluster)
	h.mu.Unlock()
	if t != nil && t.sess != nil {
		t.sess.Close()
	}
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

// refuseStreams closes every stream the agent opens: requests flow from the
// hub to the agent only, and an agent's identity must not act on the hub
// through its tunnel.
func refuseStreams(sess *yamux.Session) {
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			return
		}
		s.Close()
	}
}

// transport sends requests on streams of sess, keeping a few open between
// the requests of a burst (kubectl's discovery and its request, say) and
// closing them soon after, so that an idle tunnel holds no stream.
func transport(sess *yamux.Session) http.RoundTripper {
	return &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return sess.OpenStream()
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     5 * time.Second,
		DisableCompression:  true,
	}
}
