// Package failover sends HTTP requests to whichever of several equivalent
// servers answers: the hubs that share one storage, as an agent knows them.
// The server that last answered is tried first, so a fleet stays on one hub
// until it goes away.
package failover

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
)

// Transport sends each request to its hosts in turn, the last that
// answered first, moving on when one cannot be dialled or Skip says its
// answer is not its to give. A request's own host is used while no hosts
// are set.
type Transport struct {
	Base http.RoundTripper
	// Skip, if set, says a server's response means "ask another": a hub
	// on standby, say. The last such response is returned when every
	// server gave one.
	Skip func(*http.Response) bool

	mu    sync.Mutex
	hosts []string // host:port, the preferred first
}

// SetHosts sets the servers (host:port) to try, keeping the preferred one
// first if it is among them.
func (t *Transport) SetHosts(hosts []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var uniq []string
	for _, h := range hosts {
		if h != "" && !slices.Contains(uniq, h) {
			uniq = append(uniq, h)
		}
	}
	hosts = uniq
	if len(t.hosts) > 0 {
		if i := slices.Index(hosts, t.hosts[0]); i > 0 {
			hosts[0], hosts[i] = hosts[i], hosts[0]
		}
	}
	t.hosts = hosts
}

// Hosts returns the servers in the order they will be tried.
func (t *Transport) Hosts() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.hosts)
}

func (t *Transport) prefer(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := slices.Index(t.hosts, host); i > 0 {
		t.hosts = append(append([]string{host}, t.hosts[:i]...), t.hosts[i+1:]...)
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	hosts := t.Hosts()
	if len(hosts) == 0 {
		return t.Base.RoundTrip(req)
	}
	var skipped *http.Response // the last "ask another"
	var lastErr error
	for i, host := range hosts {
		r := req.Clone(req.Context())
		r.URL.Host, r.Host = host, ""
		if i > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				break // the body is spent: no second try
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.Base.RoundTrip(r)
		switch {
		case err != nil && !unreachable(err):
			if skipped != nil {
				skipped.Body.Close()
			}
			return nil, err
		case err != nil:
			lastErr = err
		case t.Skip != nil && t.Skip(resp):
			if skipped != nil {
				skipped.Body.Close()
			}
			skipped = resp
		default:
			if skipped != nil {
				skipped.Body.Close()
			}
			t.prefer(host)
			return resp, nil
		}
	}
	if skipped != nil {
		return skipped, nil
	}
	return nil, lastErr
}

// unreachable says the request never reached a server, so another may
// take it, whatever its method: the dial failed or timed out, directly or
// to the proxy the environment names. (Behind a load balancer the dial
// succeeds whatever is behind it: that address is one server here.)
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect")
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
