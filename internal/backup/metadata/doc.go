// Package metadata reads and writes velero-backup.json, the backup object
// Velero keeps beside each archive in a location. It is written last, so
// its presence says the backup is whole; a location's backups are listed
// by it, those Velero wrote included.
package metadata
