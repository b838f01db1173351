package agent

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// kindMapper names kinds as the member cluster serves them, from its
// discovery: the real plural, group and preferred version, custom
// resources included. Discovery is cached and read again at most once per
// sync, when a kind is not found (a CRD may have been installed since).
type kindMapper struct {
	cache  discovery.CachedDiscoveryInterface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	reset  bool // discovery was read again during this sync
}

func newKindMapper(cfg *rest.Config) (*kindMapper, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cache := memory.NewMemCacheClient(dc)
	return &kindMapper{cache: cache, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cache)}, nil
}

// fresh starts a sync: a kind not found may read discovery again once.
func (m *kindMapper) fresh() { m.reset = false }

func (m *kindMapper) resolve(gk schema.GroupKind) (schema.GroupVersionResource, error) {
	mapping, err := m.mapper.RESTMapping(gk)
	if meta.IsNoMatchError(err) && !m.reset {
		m.reset = true
		m.mapper.Reset()
		mapping, err = m.mapper.RESTMapping(gk)
	}
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return mapping.Resource, nil
}

// resolveKinds rewrites u's rules to what the cluster serves, adds what u
// governs to governed and notes the kinds the cluster does not serve. It
// reports whether u still matches anything here.
func (s *syncer) resolveKinds(u *unstructured.Unstructured, res *applied, governed map[schema.GroupVersionResource]bool) bool {
	r, err := policy.ResolveKinds(u, s.kinds.resolve)
	if err != nil {
		res.fail(u, err)
		return false
	}
	kinds := make([]string, 0, len(r.NotServed))
	for k := range r.NotServed {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		res.notices = append(res.notices, fv1.Insight{
			Policy: u.GetLabels()[policy.PolicyLabel], Type: fv1.PolicyType(u.GetLabels()[policy.PolicyTypeLabel]), Kind: fv1.InsightKindNotServed,
			Message: fmt.Sprintf("the cluster does not serve kind %s (%v): the policy governs nothing of that kind here", k, r.NotServed[k]),
		})
	}
	if u.GetKind() == "ValidatingAdmissionPolicy" {
		for _, gvr := range r.Governed {
			governed[gvr] = true
		}
	}
	return !r.Empty
}
