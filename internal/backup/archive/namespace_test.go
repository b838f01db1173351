package archive

import (
	"reflect"
	"strings"
	"testing"
)

func TestMapNamespace(t *testing.T) {
	mapping := map[string]string{"prod": "prod-copy", "web": "web-copy"}
	subjects := func(nss ...string) []any {
		out := []any{}
		for _, ns := range nss {
			out = append(out, map[string]any{"kind": "ServiceAccount", "name": "sa", "namespace": ns})
		}
		return out
	}
	tests := []struct {
		name        string
		apiVersion  string
		kind        string
		namespace   string
		objName     string
		in, want    map[string]any
		wantNS      string
		wantObjName string
	}{
		{name: "namespaced object", apiVersion: "v1", kind: "ConfigMap", namespace: "prod", objName: "c", wantNS: "prod-copy", wantObjName: "c"},
		{name: "unmapped namespace", apiVersion: "v1", kind: "ConfigMap", namespace: "other", objName: "c", wantNS: "other", wantObjName: "c"},
		{
			name: "namespace object", apiVersion: "v1", kind: "Namespace", objName: "web",
			in:     map[string]any{"metadata": map[string]any{"labels": map[string]any{"kubernetes.io/metadata.name": "web", "team": "a"}}},
			want:   map[string]any{"metadata": map[string]any{"labels": map[string]any{"kubernetes.io/metadata.name": "web-copy", "team": "a"}}},
			wantNS: "", wantObjName: "web-copy",
		},
		{name: "unmapped namespace object", apiVersion: "v1", kind: "Namespace", objName: "kube-system", wantObjName: "kube-system"},
		{name: "cluster-scoped object named like a namespace", apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", objName: "prod", wantObjName: "prod"},
		{
			name: "rolebinding subjects", apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", namespace: "prod", objName: "rb",
			in: map[string]any{"subjects": append(subjects("prod", "other"),
				map[string]any{"kind": "User", "name": "alice", "namespace": "prod"})},
			want: map[string]any{"subjects": append(subjects("prod-copy", "other"),
				map[string]any{"kind": "User", "name": "alice", "namespace": "prod"})},
			wantNS: "prod-copy", wantObjName: "rb",
		},
		{
			name: "clusterrolebinding subjects", apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", objName: "crb",
			in:          map[string]any{"subjects": subjects("web", "prod")},
			want:        map[string]any{"subjects": subjects("web-copy", "prod-copy")},
			wantObjName: "crb",
		},
		{
			name: "volume claimRef", apiVersion: "v1", kind: "PersistentVolume", objName: "pv1",
			in:          map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "prod", "name": "data"}}},
			want:        map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "prod-copy", "name": "data"}}},
			wantObjName: "pv1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(tt.apiVersion, tt.kind, tt.namespace, tt.objName, tt.in)
			MapNamespace(obj, mapping)
			if obj.GetNamespace() != tt.wantNS || obj.GetName() != tt.wantObjName {
				t.Errorf("got %s/%s, want %s/%s", obj.GetNamespace(), obj.GetName(), tt.wantNS, tt.wantObjName)
			}
			if tt.want != nil {
				want := object(tt.apiVersion, tt.kind, tt.wantNS, tt.wantObjName, tt.want)
				if !reflect.DeepEqual(obj.Object, want.Object) {
					t.Errorf("got\n%v\nwant\n%v", obj.Object, want.Object)
				}
			}
		})
	}
	MapNamespace(nil, mapping) // must not panic
}

func TestParseNamespaceMapping(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "", want: map[string]string{}},
		{in: "a:b", want: map[string]string{"a": "b"}},
		{in: " prod:prod-copy , web:web-copy ", want: map[string]string{"prod": "prod-copy", "web": "web-copy"}},
		{in: "a:b,b:c", want: map[string]string{"a": "b", "b": "c"}},
		{in: "a", wantErr: "malformed"},
		{in: "a:", wantErr: "malformed"},
		{in: ":b", wantErr: "malformed"},
		{in: "a:b:c", wantErr: "malformed"},
		{in: "a:b,,c:d", wantErr: "empty pair"},
		{in: "a:b,", wantErr: "empty pair"},
		{in: "a:b,a:c", wantErr: `"a" is mapped twice`},
		{in: "a:x,b:x", wantErr: `both mapped to "x"`},
		{in: "Prod:copy", wantErr: `"Prod" is not a valid namespace name`},
		{in: "prod:copy_1", wantErr: `"copy_1" is not a valid namespace name`},
		{in: "prod:" + strings.Repeat("n", 64), wantErr: "not a valid namespace name"},
	}
	for _, tt := range tests {
		got, err := ParseNamespaceMapping(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseNamespaceMapping(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseNamespaceMapping(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
