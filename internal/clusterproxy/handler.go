package clusterproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/tunnel"
)

// MaxBody bounds a proxied request's body, as the hub's apiserver bounds
// its own (--max-request-bytes).
const MaxBody = 3 << 20

// Prefix is the path prefix the handler serves. It is longer than the
// prefix an APIService of the group would take, so that one left from an
// earlier version cannot shadow it.
const Prefix = "/apis/" + fv1.ProxyGroup + "/" + fv1.ProxyVersion + "/" + fv1.ProxyResource + "/"

// Handler serves each cluster's proxy. It answers 503 until Serve gives it
// what it needs: the apiserver serves before the hub's tunnels and caches
// exist.
type Handler struct {
	deps atomic.Pointer[deps]
}

type deps struct {
	tunnels *tunnel.Hub
	// clusters reads Clusters, to tell an unknown cluster from one whose
	// agent is not connected.
	clusters client.Reader
}

// Serve starts answering with tunnels and clusters.
func (h *Handler) Serve(tunnels *tunnel.Hub, clusters client.Reader) {
	h.deps.Store(&deps{tunnels: tunnels, clusters: clusters})
}

var groupVersion = fv1.ProxyGroup + "/" + fv1.ProxyVersion

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := h.deps.Load()
	if d == nil {
		w.Header().Set("Retry-After", "1")
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "the hub is starting; retry")
		return
	}
	path := r.URL.EscapedPath()
	cluster, rest, ok := parseProxyPath(path)
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s is not a path of the access point: a cluster's API is under %s", path, fv1.ProxyPath("NAME")))
		return
	}
	if errs := validation.IsDNS1123Subdomain(cluster); len(errs) > 0 {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("%q is not a cluster name: %s", cluster, strings.Join(errs, "; ")))
		return
	}
	d.proxy(w, r, cluster, rest)
}

// parseProxyPath splits an escaped path under ProxyPath(cluster) into the
// cluster and the rest, the path on the cluster's apiserver.
func parseProxyPath(path string) (cluster, rest string, ok bool) {
	after, ok := strings.CutPrefix(path, "/apis/"+groupVersion+"/"+fv1.ProxyResource+"/")
	if !ok {
		return "", "", false
	}
	cluster, after, _ = strings.Cut(after, "/")
	sub, rest, _ := strings.Cut(after, "/")
	if cluster == "" || sub != fv1.ProxySubresource {
		return "", "", false
	}
	return cluster, "/" + rest, true
}

// proxy carries r to cluster's apiserver through its tunnel, for the agent
// to send as the user the hub's apiserver authenticated.
func (h *deps) proxy(w http.ResponseWriter, r *http.Request, cluster, rest string) {
	u, ok := request.UserFrom(r.Context())
	if !ok || u.GetName() == "" {
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "no user")
		return
	}
	upgrade := r.Header.Get("Upgrade") != ""
	if !upgrade && r.ContentLength > MaxBody {
		writeStatus(w, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, fmt.Sprintf("the request body of %d bytes is larger than the %d the access point carries", r.ContentLength, MaxBody))
		return
	}
	var c fv1.Cluster
	if err := h.clusters.Get(r.Context(), client.ObjectKey{Name: cluster}, &c, client.UnsafeDisableDeepCopy); apierrors.IsNotFound(err) {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("cluster %q is not attached to this hub; 'flotilla cluster list' shows those that are", cluster))
		return
	} else if err != nil {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "reading cluster "+cluster+": "+err.Error())
		return
	}
	rt, err := h.tunnels.RoundTripper(r.Context(), cluster)
	if err != nil {
		w.Header().Set("Retry-After", "10")
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, unavailable(&c, err))
		return
	}
	// Whatever the client asked to impersonate, the hub's apiserver has
	// already judged and applied: the user here is the one to act as.
	for k := range r.Header {
		if strings.HasPrefix(k, "Impersonate-") || k == "Authorization" {
			r.Header.Del(k)
		}
	}
	if !upgrade {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}
	memberPath, _ := url.PathUnescape(rest)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", cluster
			pr.Out.URL.RawPath = rest
			pr.Out.URL.Path = memberPath
			pr.Out.Host = cluster
		},
		Transport: transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
			UserName: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: memberExtra(u.GetExtra()),
		}, rt),
		// Watch events go out as they come.
		FlushInterval: -1,
		BufferPool:    tunnel.Buffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			writeStatus(w, http.StatusBadGateway, metav1.StatusReasonServiceUnavailable, fmt.Sprintf("the request to cluster %s failed in its tunnel: %v; the agent may have restarted: retry", cluster, err))
		},
	}
	rp.ServeHTTP(tunnel.Writer(w, r, memberPath), r)
}

// memberExtra is what of a user's extra attributes the member is told: not
// the id of the credential the user gave the hub, which means nothing
// there and would cost the member an authorization check per request.
func memberExtra(extra map[string][]string) map[string][]string {
	if _, ok := extra[credentialIDKey]; !ok {
		return extra
	}
	out := make(map[string][]string, len(extra))
	for k, v := range extra {
		if k != credentialIDKey {
			out[k] = v
		}
	}
	return out
}

const credentialIDKey = "authentication.kubernetes.io/credential-id"

// unavailable says why cluster c cannot be reached, and since when.
func unavailable(c *fv1.Cluster, err error) string {
	if !errors.Is(err, tunnel.ErrNotConnected) {
		return fmt.Sprintf("cluster %s cannot be reached: %v; retry, and see 'flotilla cluster get %s'", c.Name, err, c.Name)
	}
	since := "it has not connected since it was attached"
	if t := c.Status.LastHeartbeatTime; t != nil {
		since = fmt.Sprintf("last heard from at %s, %s ago", t.UTC().Format(time.RFC3339), duration.HumanDuration(time.Since(t.Time)))
	}
	return fmt.Sprintf("cluster %s cannot be reached: its agent is not connected to the hub (%s)", c.Name, since)
}
