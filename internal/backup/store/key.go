package store

import (
	"fmt"
	"strings"
)

// tmpPrefix starts the names of Dir's unfinished files. Keys may not use it,
// so a key can never collide with one or be hidden from List.
const tmpPrefix = ".flotilla-tmp-"

// checkKey accepts relative slash-separated paths without empty, "." or ".."
// segments, so a key maps to exactly one file under Dir's root and to the
// same object name in every store.
func checkKey(key string) error {
	if key == "" {
		return invalidKey(key, "it is empty")
	}
	return checkPath(key, key)
}

// checkPrefix is checkKey for List prefixes, which may be empty or end in "/".
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(prefix, strings.TrimSuffix(prefix, "/"))
}

func checkPath(orig, p string) error {
	if strings.HasPrefix(p, "/") {
		return invalidKey(orig, "it is absolute")
	}
	if strings.ContainsRune(p, 0) {
		return invalidKey(orig, "it contains a NUL byte")
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return invalidKey(orig, "it has an empty segment")
		case seg == "." || seg == "..":
			return invalidKey(orig, fmt.Sprintf("it has a %q segment", seg))
		case strings.HasPrefix(seg, tmpPrefix):
			return invalidKey(orig, fmt.Sprintf("segments starting with %q are reserved", tmpPrefix))
		}
	}
	return nil
}

func invalidKey(key, why string) error {
	return fmt.Errorf("%w %q: %s; use a relative slash-separated path such as backups/NAME/NAME.tar.gz", ErrInvalidKey, key, why)
}
