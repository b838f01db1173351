package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/tunnel"
)

// tunneler opens the agent's tunnel when the hub asks, and serves the
// requests it carries to the cluster's apiserver.
type tunneler struct {
	ctx     context.Context
	rt      http.RoundTripper // to the hub's agent endpoint
	url     string            // of the tunnel there
	handler http.Handler      // nil: this agent cannot proxy
	open    atomic.Bool
}

// newTunneler answers the hub's requests for a tunnel with one to the
// apiserver cfg reaches. cfg nil (a simulated cluster) refuses them.
func newTunneler(ctx context.Context, rt http.RoundTripper, streamURL string, cfg *rest.Config) (*tunneler, error) {
	t := &tunneler{ctx: ctx, rt: rt, url: strings.TrimSuffix(streamURL, heartbeat.StreamPath) + heartbeat.TunnelPath}
	if cfg == nil {
		return t, nil
	}
	h, err := memberProxy(cfg)
	if err != nil {
		return nil, err
	}
	t.handler = h
	return t, nil
}

// ask opens the tunnel unless it is open. It is called on the stream's
// reader, so it only starts the work.
func (t *tunneler) ask() {
	if t.handler == nil || !t.open.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer t.open.Store(false)
		dctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		conn, err := heartbeat.UpgradeTo(dctx, t.rt, t.url, heartbeat.TunnelProtocol)
		cancel()
		if err != nil {
			klog.InfoS("cannot open the tunnel the hub asked for", "hub", t.url, "err", err)
			return
		}
		klog.V(1).InfoS("tunnel open")
		if err := tunnel.Serve(conn, t.handler, t.ctx.Done()); err != nil {
			klog.InfoS("tunnel closed", "err", err)
		}
	}()
}

// memberProxy sends the requests the hub's access point carries to the
// apiserver cfg reaches, with the agent's credentials, as the user the hub
// names in the impersonation headers. A request that names nobody is
// refused: the agent never acts as itself for a user.
func memberProxy(cfg *rest.Config) (http.Handler, error) {
	base, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("cluster address %q: %v", cfg.Host, err)
	}
	cfg = rest.CopyConfig(cfg)
	// Watches and long requests last as long as the user keeps them.
	cfg.Timeout = 0
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Host = base.Host
		},
		Transport:     rt,
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(transport.ImpersonateUserHeader) == "" {
			http.Error(w, "a request through the tunnel must name the user to act as", http.StatusForbidden)
			return
		}
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}), nil
}
