// Package locations is the hub's view of BackupLocations: which one a
// cluster's backups go to, how the hub opens one, and what an agent is
// told to reach one with.
package locations
