package executor

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// filter decides which resources, namespaces and objects a job takes.
type filter struct {
	f   fv1.ResourceFilter
	sel labels.Selector
}

func newFilter(f fv1.ResourceFilter) (*filter, error) {
	sel := labels.Everything()
	if f.LabelSelector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(f.LabelSelector); err != nil {
			return nil, fmt.Errorf("label selector: %v", err)
		}
	}
	return &filter{f: f, sel: sel}, nil
}

// all: an empty list, or one holding "*", takes everything.
func all(list []string) bool { return len(list) == 0 || slices.Contains(list, "*") }

// names says whether gr is named in list, as resource or resource.group.
func names(list []string, gr schema.GroupResource) bool {
	return slices.Contains(list, gr.Resource) || slices.Contains(list, gr.String())
}

// resource says whether objects of gr are taken.
func (f *filter) resource(gr schema.GroupResource, namespaced bool) bool {
	if names(f.f.ExcludedResources, gr) || !all(f.f.IncludedResources) && !names(f.f.IncludedResources, gr) {
		return false
	}
	if namespaced || gr == (schema.GroupResource{Resource: "namespaces"}) {
		return true
	}
	if f.f.IncludeClusterResources != nil {
		return *f.f.IncludeClusterResources
	}
	// Unset: cluster-scoped resources go with a whole-cluster backup, or
	// when named.
	return all(f.f.IncludedNamespaces) && len(f.f.ExcludedNamespaces) == 0 || names(f.f.IncludedResources, gr)
}

// namespace says whether objects in ns are taken.
func (f *filter) namespace(ns string) bool {
	return !slices.Contains(f.f.ExcludedNamespaces, ns) && (all(f.f.IncludedNamespaces) || slices.Contains(f.f.IncludedNamespaces, ns))
}

// object says whether an object is taken: its namespace (a Namespace by
// its own name) and its labels.
func (f *filter) object(gr schema.GroupResource, ns, name string, lbls map[string]string) bool {
	if gr == (schema.GroupResource{Resource: "namespaces"}) {
		ns = name
	}
	if ns != "" && !f.namespace(ns) {
		return false
	}
	return f.sel.Matches(labels.Set(lbls))
}
