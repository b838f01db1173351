package archive

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resourceList builds Velero's resource list from what a Writer has seen:
// keys "<apiVersion>/<Kind>", values sorted "ns/name" or "name". It is
// built on demand so the Writer keeps no second copy of every name.
func resourceList(seen map[objectID]objectVersions, kinds map[schema.GroupVersionResource]string) map[string][]string {
	list := map[string][]string{}
	add := func(id objectID, version string) {
		gvr := id.gr.WithVersion(version)
		key := gvr.GroupVersion().String() + "/" + kinds[gvr]
		list[key] = append(list[key], objectName(id.namespace, id.name))
	}
	for id, v := range seen {
		if v.preferred != "" {
			add(id, v.preferred)
		}
		for _, version := range v.others {
			add(id, version)
		}
	}
	for _, names := range list {
		slices.Sort(names)
	}
	return list
}
