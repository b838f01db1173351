// Package jobs is what the hub and an agent say to each other about
// backups and restores: the jobs the hub hands a cluster's agent, the
// progress the agent reports, and the hub location's object store, which
// agents reach over their mutual-TLS connection to the hub's agent
// endpoint. The agent needs no RBAC on the hub for any of it: the hub
// answers for the cluster the client certificate names, and for nothing
// else.
package jobs
