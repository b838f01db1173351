// Package clusterproxy is the hub's access point: the path
// /apis/proxy.flotilla.dev/v1alpha1/clusters/NAME/proxy/..., which carries a
// user's request to a cluster's apiserver through the tunnel the cluster's
// agent opens to the hub.
//
// The handler is served inside the hub's apiserver, behind its handler
// chain: by the time a request reaches it, the apiserver has authenticated
// the user (any authenticator the hub has: client certificates, OIDC,
// tokens), honoured impersonation headers the hub's RBAC allows, authorized
// the verb on clusters/proxy for the named cluster, and written the request
// to its audit log. The handler forwards the request with that identity for
// the agent to impersonate: on the member, the member's RBAC decides.
package clusterproxy
