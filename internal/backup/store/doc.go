// Package store keeps backup archives: in a directory on the hub's disk (Dir)
// or in an S3 bucket (S3). Both hold objects under slash-separated keys laid
// out as Velero lays out object storage, e.g. backups/NAME/NAME.tar.gz, and
// both publish an object only once it is complete, so a reader never sees a
// half-written archive.
package store
