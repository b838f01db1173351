// Package archive reads and writes backup archives in Velero's documented
// on-storage "Output file format", version 1.1.0, and plans restores from
// them the way Velero documents its own restores.
//
// An archive is a gzip'd tar holding metadata/version and one JSON file per
// object:
//
//	metadata/version                                      "1.1.0"
//	resources/<resource>[.<group>]/namespaces/<ns>/<name>.json
//	resources/<resource>[.<group>]/cluster/<name>.json
//	resources/<resource>[.<group>]/<v>-preferredversion/namespaces/<ns>/<name>.json
//	resources/<resource>[.<group>]/<v>/namespaces/<ns>/<name>.json
//
// Format 1.1 added the per-version directories; the un-versioned copy of each
// preferred-version object is still written so that 1.0 readers (and older
// Velero releases) can restore the archive. Objects read at a version other
// than the preferred one go only under their plain <v> directory.
//
// Writer streams objects into an archive one at a time. Extract unpacks an
// untrusted archive into a directory, refusing anything that could write
// outside it or exhaust the disk, and returns an index of its objects.
//
// Order, NeverBackedUp, Skip, Sanitize and MapNamespace are pure functions a
// restore uses to decide what to create, in which order, and in what form.
package archive
