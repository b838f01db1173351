package archive

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func serverMetadata() map[string]any {
	return map[string]any{
		"uid":                        "3f1c",
		"resourceVersion":            "1234",
		"generation":                 int64(4),
		"creationTimestamp":          "2025-01-01T00:00:00Z",
		"deletionTimestamp":          "2025-01-02T00:00:00Z",
		"deletionGracePeriodSeconds": int64(30),
		"selfLink":                   "/api/v1/namespaces/ns/configmaps/obj",
		"managedFields":              []any{map[string]any{"manager": "kubectl"}},
		"ownerReferences":            []any{map[string]any{"kind": "Thing", "name": "t", "uid": "9"}},
		"labels":                     map[string]any{"app": "web"},
		"annotations":                map[string]any{lastApplied: `{"kind":"ConfigMap"}`},
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name      string
		gr        string
		kind      string
		in        map[string]any
		hasStatus bool
		want      map[string]any
	}{
		{
			name: "server metadata dropped, labels and last-applied kept",
			gr:   "configmaps", kind: "ConfigMap",
			in: map[string]any{"metadata": serverMetadata(), "data": map[string]any{"k": "v"}},
			want: map[string]any{"metadata": map[string]any{
				"labels":      map[string]any{"app": "web"},
				"annotations": map[string]any{lastApplied: `{"kind":"ConfigMap"}`},
			}, "data": map[string]any{"k": "v"}},
		},
		{
			name: "status dropped with a status subresource",
			gr:   "deployments.apps", kind: "Deployment", hasStatus: true,
			in:   map[string]any{"spec": map[string]any{"replicas": int64(2)}, "status": map[string]any{"readyReplicas": int64(2)}},
			want: map[string]any{"spec": map[string]any{"replicas": int64(2)}},
		},
		{
			name: "status kept without a status subresource",
			gr:   "widgets.example.com", kind: "Widget", hasStatus: false,
			in:   map[string]any{"status": map[string]any{"note": "part of the object"}},
			want: map[string]any{"status": map[string]any{"note": "part of the object"}},
		},
		{
			name: "service with a cluster IP and node ports",
			gr:   "services", kind: "Service",
			in: map[string]any{"spec": map[string]any{
				"type":                "LoadBalancer",
				"clusterIP":           "10.96.4.2",
				"clusterIPs":          []any{"10.96.4.2"},
				"healthCheckNodePort": int64(32000),
				"ports": []any{
					map[string]any{"port": int64(80), "targetPort": int64(8080), "nodePort": int64(31080)},
					map[string]any{"port": int64(443), "nodePort": int64(31443)},
				},
			}},
			want: map[string]any{"spec": map[string]any{
				"type": "LoadBalancer",
				"ports": []any{
					map[string]any{"port": int64(80), "targetPort": int64(8080)},
					map[string]any{"port": int64(443)},
				},
			}},
		},
		{
			name: "headless service stays headless",
			gr:   "services", kind: "Service",
			in:   map[string]any{"spec": map[string]any{"clusterIP": "None", "clusterIPs": []any{"None"}, "ports": []any{map[string]any{"port": int64(80)}}}},
			want: map[string]any{"spec": map[string]any{"clusterIP": "None", "clusterIPs": []any{"None"}, "ports": []any{map[string]any{"port": int64(80)}}}},
		},
		{
			name: "pod loses its node",
			gr:   "pods", kind: "Pod",
			in:   map[string]any{"spec": map[string]any{"nodeName": "node-a", "containers": []any{map[string]any{"name": "c"}}}},
			want: map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c"}}}},
		},
		{
			name: "nodeName only matters on pods",
			gr:   "widgets.example.com", kind: "Widget",
			in:   map[string]any{"spec": map[string]any{"nodeName": "node-a"}},
			want: map[string]any{"spec": map[string]any{"nodeName": "node-a"}},
		},
		{
			name: "claim binds afresh",
			gr:   "persistentvolumeclaims", kind: "PersistentVolumeClaim",
			in: map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{
					"pv.kubernetes.io/bind-completed":          "yes",
					"pv.kubernetes.io/bound-by-controller":     "yes",
					"volume.kubernetes.io/storage-provisioner": "csi.example.com",
				}},
				"spec": map[string]any{"volumeName": "pvc-123", "storageClassName": "fast"},
			},
			want: map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{"volume.kubernetes.io/storage-provisioner": "csi.example.com"}},
				"spec":     map[string]any{"storageClassName": "fast"},
			},
		},
		{
			name: "claim annotations removed entirely when none are left",
			gr:   "persistentvolumeclaims", kind: "PersistentVolumeClaim",
			in:   map[string]any{"metadata": map[string]any{"annotations": map[string]any{"pv.kubernetes.io/bind-completed": "yes"}}},
			want: map[string]any{"metadata": map[string]any{}},
		},
		{
			name: "volume forgets its old claim's uid",
			gr:   "persistentvolumes", kind: "PersistentVolume",
			in:   map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "ns", "name": "data", "uid": "7", "resourceVersion": "9"}}},
			want: map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "ns", "name": "data"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object("v1", tt.kind, "ns", "obj", tt.in)
			want := object("v1", tt.kind, "ns", "obj", tt.want)
			Sanitize(schema.ParseGroupResource(tt.gr), obj, tt.hasStatus)
			if !reflect.DeepEqual(obj.Object, want.Object) {
				t.Errorf("got\n%v\nwant\n%v", obj.Object, want.Object)
			}
		})
	}
	Sanitize(schema.GroupResource{Resource: "pods"}, nil, true) // must not panic
}

func TestSanitizeKeepsUnrelatedObjectsIntact(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
	Sanitize(schema.GroupResource{Resource: "configmaps"}, obj, true)
	if want := map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}; !reflect.DeepEqual(obj.Object, want) {
		t.Errorf("got %v, want %v", obj.Object, want)
	}
}
