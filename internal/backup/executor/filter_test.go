package executor

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestFilter(t *testing.T) {
	yes, no := true, false
	cms := schema.GroupResource{Resource: "configmaps"}
	deps := schema.GroupResource{Group: "apps", Resource: "deployments"}
	crs := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}
	nss := schema.GroupResource{Resource: "namespaces"}
	for _, tc := range []struct {
		name string
		f    fv1.ResourceFilter
		// what each is asked about, and the answer wanted
		resources map[schema.GroupResource]bool // namespaced unless clusterroles or namespaces
		objects   map[[2]string]bool            // {namespace, label app} → taken
	}{
		{"everything", fv1.ResourceFilter{},
			map[schema.GroupResource]bool{cms: true, deps: true, crs: true, nss: true},
			map[[2]string]bool{{"a", ""}: true, {"b", "x"}: true}},
		{"namespaces leave cluster-scoped out, but not the namespaces themselves", fv1.ResourceFilter{IncludedNamespaces: []string{"a"}},
			map[schema.GroupResource]bool{cms: true, crs: false, nss: true},
			map[[2]string]bool{{"a", ""}: true, {"b", ""}: false}},
		{"cluster resources forced in", fv1.ResourceFilter{IncludedNamespaces: []string{"a"}, IncludeClusterResources: &yes},
			map[schema.GroupResource]bool{crs: true}, nil},
		{"cluster resources forced out", fv1.ResourceFilter{IncludeClusterResources: &no},
			map[schema.GroupResource]bool{crs: false, cms: true, nss: true}, nil},
		{"excluded namespace", fv1.ResourceFilter{ExcludedNamespaces: []string{"b"}},
			map[schema.GroupResource]bool{crs: false},
			map[[2]string]bool{{"a", ""}: true, {"b", ""}: false}},
		{"resources by name and by name.group", fv1.ResourceFilter{IncludedResources: []string{"configmaps", "deployments.apps"}},
			map[schema.GroupResource]bool{cms: true, deps: true, crs: false}, nil},
		{"a named cluster-scoped resource is taken", fv1.ResourceFilter{IncludedNamespaces: []string{"a"}, IncludedResources: []string{"clusterroles.rbac.authorization.k8s.io"}},
			map[schema.GroupResource]bool{crs: true, cms: false}, nil},
		{"excluded resource", fv1.ResourceFilter{ExcludedResources: []string{"deployments.apps"}},
			map[schema.GroupResource]bool{deps: false, cms: true}, nil},
		{"label selector", fv1.ResourceFilter{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}},
			nil, map[[2]string]bool{{"a", "x"}: true, {"a", ""}: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newFilter(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			for gr, want := range tc.resources {
				namespaced := gr != crs && gr != nss
				if got := f.resource(gr, namespaced); got != want {
					t.Errorf("resource %s: %v, want %v", gr, got, want)
				}
			}
			for o, want := range tc.objects {
				labels := map[string]string{}
				if o[1] != "" {
					labels["app"] = o[1]
				}
				if got := f.object(cms, o[0], "x", labels); got != want {
					t.Errorf("object in %q labelled %q: %v, want %v", o[0], o[1], got, want)
				}
			}
		})
	}
	// A Namespace is judged by its own name.
	f, _ := newFilter(fv1.ResourceFilter{IncludedNamespaces: []string{"a"}})
	if !f.object(nss, "", "a", nil) || f.object(nss, "", "b", nil) {
		t.Error("namespaces a and b: want a taken, b not")
	}
}
