package archive

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// highPriorities and lowPriorities are Velero's default
// --restore-resource-priorities, written out in full because Velero
// resolves its short names ("clusterroles") through discovery, which a pure
// function has not got. Objects later in the list depend on earlier ones:
// CRDs before their custom resources, namespaces before their contents,
// volumes before claims before pods, RBAC and service accounts before the
// workloads that run as them, and Cluster API clusters last so everything
// they reference exists when their controllers see them.
var (
	highPriorities = []schema.GroupResource{
		{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
		{Resource: "namespaces"},
		{Group: "storage.k8s.io", Resource: "storageclasses"},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotclasses"},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents"},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"},
		{Group: "velero.io", Resource: "datauploads"},
		{Resource: "persistentvolumes"},
		{Resource: "persistentvolumeclaims"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Group: "rbac.authorization.k8s.io", Resource: "roles"},
		{Resource: "serviceaccounts"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
		{Resource: "secrets"},
		{Resource: "configmaps"},
		{Resource: "limitranges"},
		{Group: "scheduling.k8s.io", Resource: "priorityclasses"},
		{Resource: "pods"},
		{Group: "apps", Resource: "replicasets"},
		{Group: "cluster.x-k8s.io", Resource: "clusterclasses"},
		{Resource: "endpoints"},
		{Resource: "services"},
	}
	lowPriorities = []schema.GroupResource{
		{Group: "run.tanzu.vmware.com", Resource: "clusterbootstraps"},
		{Group: "cluster.x-k8s.io", Resource: "clusters"},
		{Group: "addons.cluster.x-k8s.io", Resource: "clusterresourcesets"},
		{Group: "kappctrl.k14s.io", Resource: "apps"},
		{Group: "packaging.carvel.dev", Resource: "packageinstalls"},
	}
	priorityRank = rankTable()
)

func rankTable() map[schema.GroupResource]int {
	ranks := map[schema.GroupResource]int{}
	for i, gr := range highPriorities {
		ranks[gr] = i
	}
	// Unlisted resources share rank len(highPriorities).
	for i, gr := range lowPriorities {
		ranks[gr] = len(highPriorities) + 1 + i
	}
	return ranks
}

// Order returns grs in restore order: the high-priority list above, then
// every unlisted resource sorted by its "resource.group" name, then the
// low-priority list. It does not modify grs.
func Order(grs []schema.GroupResource) []schema.GroupResource {
	out := slices.Clone(grs)
	slices.SortStableFunc(out, func(a, b schema.GroupResource) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.String(), b.String()))
	})
	return out
}

func rank(gr schema.GroupResource) int {
	if r, ok := priorityRank[gr]; ok {
		return r
	}
	return len(highPriorities)
}
