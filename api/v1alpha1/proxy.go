package v1alpha1

// The hub's access point: a request to ProxyPath(NAME)+"/api/v1/pods" reaches
// cluster NAME's apiserver through the tunnel its agent opens to the hub. It
// is served as an aggregated API of the hub's apiserver, which thus
// authenticates, authorizes and audits it like any other request: reaching
// cluster NAME is a verb in ReachVerbs on the subresource
// ProxyResource/ProxySubresource of the ProxyGroup, with resource name NAME.
const (
	ProxyGroup       = "proxy.flotilla.dev"
	ProxyVersion     = "v1alpha1"
	ProxyResource    = "clusters"
	ProxySubresource = "proxy"
)

// ReachVerbs are the verbs the hub's apiserver derives from the HTTP methods
// of requests to a named subresource (GET and watches are get, POST create,
// PUT update, PATCH patch, DELETE delete): granting all of them on
// clusters/proxy lets a subject reach a cluster, where the cluster's own RBAC
// decides what the request may do.
var ReachVerbs = []string{"get", "create", "update", "patch", "delete"}

// ProxyPath is the path on the hub under which cluster's API is served.
func ProxyPath(cluster string) string {
	return "/apis/" + ProxyGroup + "/" + ProxyVersion + "/" + ProxyResource + "/" + cluster + "/" + ProxySubresource
}
