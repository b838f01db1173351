package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// cluster's apiserver: the one cfg reaches, or, for a simulated cluster
// (cfg nil), the one server answers for. While refuse gives a reason, each
// request is refused with it.
func newTunneler(ctx context.Context, rt http.RoundTripper, streamURL string, cfg *rest.Config, server rest.Interface, refuse func() string) (*tunneler, error) {
	t := &tunneler{ctx: ctx, rt: rt, url: strings.TrimSuffix(streamURL, heartbeat.StreamPath) + heartbeat.TunnelPath}
	var base *url.URL
	var member http.RoundTripper
	switch rc, ok := server.(*rest.RESTClient); {
	case cfg != nil:
		var err error
		if base, err = url.Parse(cfg.Host); err != nil {
			return nil, fmt.Errorf("cluster address %q: %v", cfg.Host, err)
		}
		cfg = rest.CopyConfig(cfg)
		// Watches and long requests last as long as the user keeps them.
		cfg.Timeout = 0
		if member, err = rest.TransportFor(cfg); err != nil {
			return nil, err
		}
	case ok && rc.Client != nil:
		u := rc.Get().URL()
		base, member = &url.URL{Scheme: u.Scheme, Host: u.Host}, rc.Client.Transport
	default:
		return t, nil
	}
	t.handler = memberProxy(base, member, refuse)
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
// apiserver at base through rt, which holds the agent's credentials, as the
// user the hub names in the impersonation headers. A request that names
// nobody is refused: the agent never acts as itself for a user. While
// refuse (if set) gives a reason, every request is refused with it, as the
// apiserver refuses: a Status, which kubectl shows.
func memberProxy(base *url.URL, rt http.RoundTripper, refuse func() string) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Host = base.Host
		},
		Transport:     rt,
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse != nil {
			if why := refuse(); why != "" {
				forbidden(w, why)
				return
			}
		}
		if r.Header.Get(transport.ImpersonateUserHeader) == "" {
			http.Error(w, "a request through the tunnel must name the user to act as", http.StatusForbidden)
			return
		}
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	})
}

// forbidden answers 403 with a Status saying why.
func forbidden(w http.ResponseWriter, why string) {
	body, _ := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure, Message: why, Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden,
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	w.Write(body)
}
