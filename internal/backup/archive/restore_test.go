package archive

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNeverBackedUp(t *testing.T) {
	tests := map[string]bool{
		"nodes":                      true,
		"events":                     true,
		"events.events.k8s.io":       true,
		"leases.coordination.k8s.io": true,
		"certificatesigningrequests.certificates.k8s.io": true,
		"componentstatuses":                              true,
		"tokenreviews.authentication.k8s.io":             true,
		"fleets.flotilla.dev":                            true,
		"backups.backup.flotilla.dev":                    true,
		"backups.velero.io":                              true,
		"configmaps":                                     false,
		"deployments.apps":                               false,
		"leases.example.com":                             false,
		"things.notflotilla.dev":                         false,
		"widgets.flotilla.dev.example.com":               false,
		"customresourcedefinitions.apiextensions.k8s.io": false,
	}
	for name, want := range tests {
		if got := NeverBackedUp(schema.ParseGroupResource(name)); got != want {
			t.Errorf("NeverBackedUp(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestSkip(t *testing.T) {
	yes := true
	no := false
	owner := func(kind, name string, controller *bool) map[string]any {
		ref := map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-1"}
		if controller != nil {
			ref["controller"] = *controller
		}
		return map[string]any{"ownerReferences": []any{ref}}
	}
	tests := []struct {
		name string
		gr   string
		obj  map[string]any // fields beside apiVersion/kind/name
		kind string
		want string // substring of the reason; "" to restore
	}{
		{"service account token", "secrets", map[string]any{"type": "kubernetes.io/service-account-token"}, "Secret", "token"},
		{"opaque secret", "secrets", map[string]any{"type": "Opaque"}, "Secret", ""},
		{"pod of a replicaset", "pods", map[string]any{"metadata": owner("ReplicaSet", "web-5d9", &yes)}, "Pod", "ReplicaSet web-5d9 recreates it"},
		{"pod with a non-controller owner", "pods", map[string]any{"metadata": owner("Thing", "t", &no)}, "Pod", ""},
		{"pod with owner missing controller", "pods", map[string]any{"metadata": owner("Thing", "t", nil)}, "Pod", ""},
		{"bare pod", "pods", nil, "Pod", ""},
		{"replicaset of a deployment", "replicasets.apps", map[string]any{"metadata": owner("Deployment", "web", &yes)}, "ReplicaSet", "Deployment web"},
		{"root CA configmap", "configmaps", map[string]any{"metadata": map[string]any{"name": "kube-root-ca.crt"}}, "ConfigMap", "kube-root-ca.crt"},
		{"ordinary configmap", "configmaps", nil, "ConfigMap", ""},
		{"controller endpoints", "endpoints", map[string]any{"metadata": map[string]any{"labels": map[string]any{"endpoints.kubernetes.io/managed-by": "endpoint-controller"}}}, "Endpoints", "endpoints controller"},
		{"hand-made endpoints", "endpoints", nil, "Endpoints", ""},
		{"controller endpointslice", "endpointslices.discovery.k8s.io", map[string]any{"metadata": map[string]any{"labels": map[string]any{"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}}}, "EndpointSlice", "EndpointSlice controllers"},
		{"mirrored endpointslice", "endpointslices.discovery.k8s.io", map[string]any{"metadata": map[string]any{"labels": map[string]any{"endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}}}, "EndpointSlice", "EndpointSlice controllers"},
		{"hand-made endpointslice", "endpointslices.discovery.k8s.io", map[string]any{"metadata": map[string]any{"labels": map[string]any{"endpointslice.kubernetes.io/managed-by": "my-operator"}}}, "EndpointSlice", ""},
		{"default service account", "serviceaccounts", map[string]any{"metadata": map[string]any{"name": "default"}}, "ServiceAccount", ""},
		{"event", "events", nil, "Event", "never restored"},
		{"flotilla object", "fleets.flotilla.dev", nil, "Fleet", "never restored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object("v1", tt.kind, "ns", "obj", tt.obj)
			got := Skip(schema.ParseGroupResource(tt.gr), obj)
			switch {
			case tt.want == "" && got != "":
				t.Errorf("Skip = %q, want the object restored", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("Skip = %q, want a reason mentioning %q", got, tt.want)
			}
		})
	}
}
