// Package executor runs backups and restores in a member cluster, on the
// agent: it lists what the cluster serves (discovery, preferred versions,
// custom resources included) into a Velero-format archive streamed to the
// location as it is written, and restores an archive in Velero's order,
// with what the server sets dropped. Nothing is held whole in memory: a
// backup streams through a pipe, a restore reads its archive from disk.
package executor
