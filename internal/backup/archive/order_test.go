package archive

import (
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func parseGRs(names ...string) []schema.GroupResource {
	out := make([]schema.GroupResource, len(names))
	for i, n := range names {
		out[i] = schema.ParseGroupResource(n)
	}
	return out
}

func TestOrder(t *testing.T) {
	// Velero's default --restore-resource-priorities, fully qualified,
	// with unlisted resources sorted between the high and low lists.
	want := parseGRs(
		"customresourcedefinitions.apiextensions.k8s.io",
		"namespaces",
		"storageclasses.storage.k8s.io",
		"volumesnapshotclasses.snapshot.storage.k8s.io",
		"volumesnapshotcontents.snapshot.storage.k8s.io",
		"volumesnapshots.snapshot.storage.k8s.io",
		"datauploads.velero.io",
		"persistentvolumes",
		"persistentvolumeclaims",
		"clusterroles.rbac.authorization.k8s.io",
		"roles.rbac.authorization.k8s.io",
		"serviceaccounts",
		"clusterrolebindings.rbac.authorization.k8s.io",
		"rolebindings.rbac.authorization.k8s.io",
		"secrets",
		"configmaps",
		"limitranges",
		"priorityclasses.scheduling.k8s.io",
		"pods",
		"replicasets.apps",
		"clusterclasses.cluster.x-k8s.io",
		"endpoints",
		"services",
		// the rest, alphabetically by resource.group
		"cronjobs.batch",
		"deployments.apps",
		"ingresses.networking.k8s.io",
		"replicasets.extensions",
		"widgets.example.com",
		// low priorities, last
		"clusterbootstraps.run.tanzu.vmware.com",
		"clusters.cluster.x-k8s.io",
		"clusterresourcesets.addons.cluster.x-k8s.io",
		"apps.kappctrl.k14s.io",
		"packageinstalls.packaging.carvel.dev",
	)
	in := slices.Clone(want)
	slices.Reverse(in)
	// Put the two that must lead somewhere in the middle as well.
	in[0], in[len(in)/2] = in[len(in)/2], in[0]
	before := slices.Clone(in)

	got := Order(in)
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w schema.GroupResource
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("position %d: got %s, want %s", i, g, w)
			}
		}
	}
	if !reflect.DeepEqual(in, before) {
		t.Error("Order modified its argument")
	}
}

func TestOrderSubsets(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{"zebras.example.com", "apples.example.com"}, []string{"apples.example.com", "zebras.example.com"}},
		{
			[]string{"widgets.example.com", "clusters.cluster.x-k8s.io", "configmaps", "namespaces", "customresourcedefinitions.apiextensions.k8s.io"},
			[]string{"customresourcedefinitions.apiextensions.k8s.io", "namespaces", "configmaps", "widgets.example.com", "clusters.cluster.x-k8s.io"},
		},
		// Same resource name in another group is not the listed one.
		{[]string{"pods.metrics.k8s.io", "pods"}, []string{"pods", "pods.metrics.k8s.io"}},
	}
	for _, tt := range tests {
		got := Order(parseGRs(tt.in...))
		if want := parseGRs(tt.want...); !reflect.DeepEqual(got, want) {
			t.Errorf("Order(%v) = %v, want %v", tt.in, got, want)
		}
	}
}
