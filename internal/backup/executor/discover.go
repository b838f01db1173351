package executor

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// served is one resource a cluster serves at its preferred version.
type served struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
	hasStatus  bool
	listable   bool
}

// discover lists the resources the cluster serves, each at its group's
// preferred version. A group whose discovery failed (an aggregated API
// that is down) is returned in failed; the rest is still good.
func discover(dc discovery.DiscoveryInterface) (map[schema.GroupResource]served, map[schema.GroupVersion]error, error) {
	_, lists, err := dc.ServerGroupsAndResources()
	var failed map[schema.GroupVersion]error
	if err != nil {
		gd, ok := err.(*discovery.ErrGroupDiscoveryFailed)
		if !ok {
			return nil, nil, err
		}
		failed = gd.Groups
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		return nil, nil, err
	}
	preferred := map[string]string{}
	for _, g := range groups.Groups {
		preferred[g.Name] = g.PreferredVersion.Version
	}
	out := map[schema.GroupResource]served{}
	status := map[schema.GroupVersionResource]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil || preferred[gv.Group] != gv.Version {
			continue
		}
		for _, r := range l.APIResources {
			if base, sub, ok := strings.Cut(r.Name, "/"); ok {
				if sub == "status" {
					status[gv.WithResource(base)] = true
				}
				continue
			}
			out[schema.GroupResource{Group: gv.Group, Resource: r.Name}] = served{
				gvr: gv.WithResource(r.Name), kind: r.Kind, namespaced: r.Namespaced,
				listable: has(r.Verbs, "list") && has(r.Verbs, "create"),
			}
		}
	}
	for gr, s := range out {
		s.hasStatus = status[s.gvr]
		out[gr] = s
	}
	return out, failed, nil
}

func has(verbs metav1.Verbs, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}
