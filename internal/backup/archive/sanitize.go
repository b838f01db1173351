package archive

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// serverSetMetadata is metadata the API server owns: a create that carries
// it is rejected or has it overwritten, and uid or resourceVersion from
// another cluster would point at nothing.
var serverSetMetadata = []string{
	"uid",
	"resourceVersion",
	"managedFields",
	"creationTimestamp",
	"generation",
	"selfLink",
	"deletionTimestamp",
	"deletionGracePeriodSeconds",
	// Owners get new uids when restored, so references to them would
	// dangle; objects with a controller owner are skipped anyway.
	"ownerReferences",
}

// PersistentVolumeClaim annotations recording a binding made in the source
// cluster; with them the claim would wait for a binding that never comes.
var pvcBindAnnotations = []string{
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
}

var (
	servicesGR = schema.GroupResource{Resource: "services"}
	podsGR     = schema.GroupResource{Resource: "pods"}
	pvcsGR     = schema.GroupResource{Resource: "persistentvolumeclaims"}
	pvsGR      = schema.GroupResource{Resource: "persistentvolumes"}
)

// Sanitize removes from obj, in place, what the target cluster's API server
// and controllers assign, so that creating it there succeeds. hasStatus
// says the resource has a status subresource (from discovery); its status
// is then dropped, since create ignores it and controllers rebuild it.
// The kubectl.kubernetes.io/last-applied-configuration annotation is kept
// so that later kubectl apply runs still compute the right patches.
func Sanitize(gr schema.GroupResource, obj *unstructured.Unstructured, hasStatus bool) {
	if obj == nil {
		return
	}
	for _, field := range serverSetMetadata {
		unstructured.RemoveNestedField(obj.Object, "metadata", field)
	}
	if hasStatus {
		unstructured.RemoveNestedField(obj.Object, "status")
	}
	switch gr {
	case servicesGR:
		sanitizeService(obj)
	case podsGR:
		// The scheduler places the pod on one of the target's nodes.
		unstructured.RemoveNestedField(obj.Object, "spec", "nodeName")
	case pvcsGR:
		// Let the claim bind afresh, as Velero does for restored claims.
		unstructured.RemoveNestedField(obj.Object, "spec", "volumeName")
		removeAnnotations(obj, pvcBindAnnotations)
	case pvsGR:
		// A claimRef to the old claim's uid makes the volume controller
		// treat the volume as released and apply its reclaim policy.
		unstructured.RemoveNestedField(obj.Object, "spec", "claimRef", "uid")
		unstructured.RemoveNestedField(obj.Object, "spec", "claimRef", "resourceVersion")
	}
}

// sanitizeService drops addresses and ports the target allocates itself;
// keeping them would collide with its own allocations. A headless Service
// keeps clusterIP "None", which is configuration, not an allocation.
func sanitizeService(obj *unstructured.Unstructured) {
	if ip, _, _ := unstructured.NestedString(obj.Object, "spec", "clusterIP"); ip != "None" {
		unstructured.RemoveNestedField(obj.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(obj.Object, "spec", "clusterIPs")
	}
	unstructured.RemoveNestedField(obj.Object, "spec", "healthCheckNodePort")
	ports, found, err := unstructured.NestedSlice(obj.Object, "spec", "ports")
	if !found || err != nil {
		return
	}
	for _, p := range ports {
		if port, ok := p.(map[string]any); ok {
			delete(port, "nodePort")
		}
	}
	_ = unstructured.SetNestedSlice(obj.Object, ports, "spec", "ports")
}

func removeAnnotations(obj *unstructured.Unstructured, keys []string) {
	ann := obj.GetAnnotations()
	if ann == nil {
		return
	}
	for _, k := range keys {
		delete(ann, k)
	}
	if len(ann) == 0 {
		ann = nil // drop the empty map rather than write "annotations": {}
	}
	obj.SetAnnotations(ann)
}
