package archive

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// indexer builds Contents from the paths Extract writes.
type indexer struct {
	resources map[schema.GroupResource]*resourceIndex
}

type resourceIndex struct {
	preferred string
	plain     map[objectKey]string // un-versioned copies
	inPref    map[objectKey]string // copies under <v>-preferredversion
}

type objectKey struct{ namespace, name string }

func newIndexer() *indexer {
	return &indexer{resources: map[schema.GroupResource]*resourceIndex{}}
}

// add records the file extracted from archive path name to onDisk.
func (ix *indexer) add(name, onDisk string) error {
	loc, ok := parseItemPath(name)
	if !ok {
		return nil
	}
	ri := ix.resources[loc.gr]
	if ri == nil {
		ri = &resourceIndex{plain: map[objectKey]string{}, inPref: map[objectKey]string{}}
		ix.resources[loc.gr] = ri
	}
	key := objectKey{loc.namespace, loc.name}
	switch {
	case loc.version == "":
		ri.plain[key] = filepath.FromSlash(onDisk)
	case loc.preferred:
		if ri.preferred != "" && ri.preferred != loc.version {
			return fmt.Errorf("archive marks both %s and %s as the preferred version of %s; it is corrupt or was not written by Velero", ri.preferred, loc.version, loc.gr)
		}
		ri.preferred = loc.version
		ri.inPref[key] = filepath.FromSlash(onDisk)
	default:
		// Other versions are only written with Velero's
		// EnableAPIGroupVersions; restores use the preferred copy.
	}
	return nil
}

// contents picks one copy per object: the un-versioned one, which every
// 1.x writer produces, else the preferred-version one.
func (ix *indexer) contents(dir, version string) *Contents {
	c := &Contents{Dir: dir, Version: version, Resources: make(map[schema.GroupResource]*Resource, len(ix.resources))}
	for gr, ri := range ix.resources {
		res := &Resource{GroupResource: gr, PreferredVersion: ri.preferred}
		for key, p := range ri.plain {
			res.Items = append(res.Items, ItemRef{Namespace: key.namespace, Name: key.name, Path: p})
		}
		for key, p := range ri.inPref {
			if _, ok := ri.plain[key]; !ok {
				res.Items = append(res.Items, ItemRef{Namespace: key.namespace, Name: key.name, Path: p})
			}
		}
		slices.SortFunc(res.Items, func(a, b ItemRef) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
		c.Resources[gr] = res
	}
	return c
}
