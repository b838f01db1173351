package archive

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FormatVersion is the Velero output file format version Writer produces.
const FormatVersion = "1.1.0"

// Names fixed by the Velero output file format.
const (
	versionFile     = "metadata/version"
	resourcesDir    = "resources"
	clusterDir      = "cluster"
	namespacesDir   = "namespaces"
	preferredSuffix = "-preferredversion"
	itemExt         = ".json"
)

// itemPath is the archive path of one object. versionDir is "" for the
// un-versioned copy, else "<v>" or "<v>-preferredversion".
func itemPath(gr schema.GroupResource, versionDir, namespace, name string) string {
	parts := make([]string, 0, 6)
	parts = append(parts, resourcesDir, gr.String())
	if versionDir != "" {
		parts = append(parts, versionDir)
	}
	if namespace == "" {
		parts = append(parts, clusterDir)
	} else {
		parts = append(parts, namespacesDir, namespace)
	}
	parts = append(parts, name+itemExt)
	return strings.Join(parts, "/")
}

// location is what an archive path says about the object stored there.
type location struct {
	gr        schema.GroupResource
	version   string // "" for the un-versioned copy
	preferred bool
	namespace string // "" for cluster-scoped objects
	name      string
}

// parseItemPath reads a cleaned archive path. ok is false for anything that
// is not an object: metadata, and files a later 1.x minor version may add,
// which the format's versioning rules say readers may ignore.
func parseItemPath(p string) (loc location, ok bool) {
	seg := strings.Split(p, "/")
	if len(seg) < 4 || seg[0] != resourcesDir || seg[1] == "" {
		return location{}, false
	}
	loc.gr = schema.ParseGroupResource(seg[1])
	rest := seg[2:]
	if rest[0] != clusterDir && rest[0] != namespacesDir {
		loc.version, loc.preferred = strings.CutSuffix(rest[0], preferredSuffix)
		if loc.version == "" {
			return location{}, false
		}
		rest = rest[1:]
	}
	switch {
	case len(rest) == 2 && rest[0] == clusterDir:
	case len(rest) == 3 && rest[0] == namespacesDir && rest[1] != "":
		loc.namespace = rest[1]
	default:
		return location{}, false
	}
	name, isItem := strings.CutSuffix(rest[len(rest)-1], itemExt)
	if !isItem || name == "" {
		return location{}, false
	}
	loc.name = name
	return loc, true
}

// checkSegment refuses a value that is not exactly one path segment: it
// would move the object to another directory, or out of the archive.
func checkSegment(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q is not a valid name", what, s)
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("%s %q contains '/' or a NUL byte, which cannot be stored as a file name", what, s)
	}
	return nil
}
