// Package clusterproxy is the hub's access point: the aggregated API
// proxy.flotilla.dev that carries a user's request to a cluster's apiserver
// through the tunnel the cluster's agent opens to the hub.
//
// The hub's apiserver serves the path (an APIService) and proxies to this
// server only after it has authenticated the user (any authenticator the hub
// has: client certificates, OIDC, tokens), honoured impersonation headers
// the hub's RBAC allows, authorized the verb on clusters/proxy for the named
// cluster, and written the request to its audit log. This server trusts the
// identity the apiserver sends only from the apiserver's front-proxy client
// certificate, and forwards the request with that identity for the agent to
// impersonate: on the member, the member's RBAC decides.
package clusterproxy
