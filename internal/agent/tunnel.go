package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/tunnel"
)

// tunneler serves the requests the hub's tunnel carries to the cluster's
// apiserver.
type tunneler struct {
	ctx     context.Context
	handler http.Handler // nil: this agent cannot proxy
}

// newTunneler answers the hub's requests for a tunnel with one to the
// cluster's apiserver: the one cfg reaches, or, for a simulated cluster
// (cfg nil), the one server answers for. While refuse gives a reason, each
// request is refused with it.
func newTunneler(ctx context.Context, cfg *rest.Config, server rest.Interface, refuse func() string) (*tunneler, error) {
	t := &tunneler{ctx: ctx}
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

// multiplexer is what the heartbeat stream calls when the hub makes a
// tunnel of its connection; nil when this agent cannot proxy, which leaves
// the hub's asks unanswered.
func (t *tunneler) multiplexer() func(io.ReadWriteCloser, []byte) (io.ReadWriteCloser, error) {
	if t.handler == nil {
		return nil
	}
	return func(conn io.ReadWriteCloser, buffered []byte) (io.ReadWriteCloser, error) {
		hb, err := tunnel.Agent(conn, buffered, t.handler, t.ctx.Done())
		if err != nil {
			klog.InfoS("cannot make the tunnel the hub asked for", "err", err)
			return nil, err
		}
		klog.V(1).InfoS("tunnel open")
		return hb, nil
	}
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
		BufferPool:    tunnel.Buffers,
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
		rp.ServeHTTP(tunnel.Writer(w, r, r.URL.Path), r)
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
