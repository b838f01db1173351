package archive

import "fmt"

// Limits bound what Extract accepts from an archive it cannot trust. A zero
// field takes its default, given beside it.
type Limits struct {
	MaxItemBytes int64 // largest single file; default 16 MiB
	MaxItems     int   // most tar entries; default 1,000,000
}

// The defaults sit far above real objects (the API server rejects requests
// over 3 MiB, and etcd values default to 1.5 MiB) while keeping a hostile
// archive from filling the disk or the inode table.
const (
	defaultMaxItemBytes = 16 << 20
	defaultMaxItems     = 1_000_000
)

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxItemBytes < 0 || l.MaxItems < 0 {
		return l, fmt.Errorf("archive limits must not be negative (got MaxItemBytes %d, MaxItems %d); use 0 for the defaults", l.MaxItemBytes, l.MaxItems)
	}
	if l.MaxItemBytes == 0 {
		l.MaxItemBytes = defaultMaxItemBytes
	}
	if l.MaxItems == 0 {
		l.MaxItems = defaultMaxItems
	}
	return l, nil
}
