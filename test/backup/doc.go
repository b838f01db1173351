// Package backup tests backups and restores end to end: a hub and two
// member clusters, real apiservers all, with agents that back up one and
// restore into the other, to the hub's own location and to a real S3
// server.
package backup
