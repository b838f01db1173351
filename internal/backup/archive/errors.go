package archive

import (
	"errors"
	"fmt"
)

// The errors below are worded for whoever holds the archive: what is wrong
// with it and what to do next.

func notGzip(magic []byte) error {
	if len(magic) == 0 {
		return errors.New("not a gzip archive: the input is empty; pass a Velero backup's .tar.gz file")
	}
	return fmt.Errorf("not a gzip archive: it starts with % x, not the gzip signature 1f 8b; pass a Velero backup's .tar.gz file", magic)
}

func corrupt(err error) error {
	return fmt.Errorf("archive is truncated or corrupt: %w; fetch it again from backup storage", err)
}

func diskError(name, dir string, err error) error {
	return fmt.Errorf("writing %s under %s: %w; check the directory is writable and its disk has room", name, dir, err)
}
