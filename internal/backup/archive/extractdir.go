package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// prepareDir makes dir, or checks that it is empty so the index describes
// exactly one archive. created says whether Extract made it.
func prepareDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("cannot create extract directory %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("cannot use %s as the extract directory: %w; pass a new or empty directory", dir, err)
	case len(entries) > 0:
		return false, fmt.Errorf("extract directory %s is not empty; pass a new or empty directory", dir)
	}
	return false, nil
}

// discard removes a failed extraction.
func discard(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
