package archive

import (
	"fmt"
	"strconv"
	"strings"
)

// checkVersion accepts any 1.x archive. Velero's versioning rules make minor
// versions backwards compatible (they only add files and directories, which
// this reader ignores); a new major version means files moved.
func checkVersion(raw string) (string, error) {
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", fmt.Errorf("not a Velero-format backup archive: %s is empty", versionFile)
	}
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 0 {
		return "", fmt.Errorf("not a Velero-format backup archive: %s holds %q, not a version number", versionFile, v)
	}
	if n != 1 {
		return "", fmt.Errorf("not a Velero-format backup archive: format version %s is not supported (this reader handles 1.x); restore it with a release that reads format %d", v, n)
	}
	return v, nil
}
