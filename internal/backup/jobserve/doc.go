// Package jobserve is the hub's side of package jobs: it hands each agent
// the backups and restores of its own cluster, takes their progress into
// the objects' status, and stores and serves the archives of hub
// locations. What an agent may read or write is decided per request from
// the jobs its cluster has open, so an agent's identity reaches no other
// cluster's backups.
package jobserve
