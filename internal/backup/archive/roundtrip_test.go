package archive

import (
	"bytes"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type added struct {
	gr        schema.GroupResource
	version   string
	preferred bool
	obj       *unstructured.Unstructured
}

func roundTripItems() []added {
	core := func(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	widgets := schema.GroupResource{Group: "example.com", Resource: "widgets"}
	clusterRoles := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}
	var items []added
	add := func(gr schema.GroupResource, version string, preferred bool, obj *unstructured.Unstructured) {
		items = append(items, added{gr, version, preferred, obj})
	}
	for _, ns := range []string{"shop", "blog"} {
		add(core("namespaces"), "v1", true, object("v1", "Namespace", "", ns, map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"kubernetes.io/metadata.name": ns}},
		}))
		for _, name := range []string{"settings", "feature-flags", "kube-root-ca.crt"} {
			add(core("configmaps"), "v1", true, object("v1", "ConfigMap", ns, name, map[string]any{
				"data": map[string]any{"greeting": "hello " + ns, "empty": ""},
			}))
		}
		add(core("secrets"), "v1", true, object("v1", "Secret", ns, "db", map[string]any{
			"type": "Opaque",
			"data": map[string]any{"password": "c2VjcmV0"},
		}))
		for _, name := range []string{"web", "worker"} {
			add(deployments, "v1", true, object("apps/v1", "Deployment", ns, name, map[string]any{
				"spec": map[string]any{
					"replicas": int64(3),
					"paused":   false,
					"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": name}},
						"spec": map[string]any{"containers": []any{
							map[string]any{"name": name, "image": "registry.example/" + name + ":1.2", "args": []any{"--ratio", 0.75}},
						}},
					},
				},
				"status": map[string]any{"readyReplicas": int64(3), "conditions": nil},
			}))
		}
	}
	for _, name := range []string{"gear", "sprocket"} {
		add(widgets, "v1", true, object("example.com/v1", "Widget", "shop", name, map[string]any{
			"spec": map[string]any{"size": int64(7), "tags": []any{"a", "b"}},
		}))
	}
	// Read at a version that is not the preferred one: stored only under v1beta1/.
	add(widgets, "v1beta1", false, object("example.com/v1beta1", "Widget", "shop", "gear", map[string]any{
		"spec": map[string]any{"sizeInches": int64(7)},
	}))
	for _, name := range []string{"reader", "writer", "system:aggregate-to-view"} {
		add(clusterRoles, "v1", true, object("rbac.authorization.k8s.io/v1", "ClusterRole", "", name, map[string]any{
			"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get", "list"}}},
		}))
	}
	return items
}

func writeArchive(t testing.TB, items []added) ([]byte, *Writer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, it := range items {
		if err := w.Add(it.gr, it.version, it.preferred, it.obj); err != nil {
			t.Fatalf("Add %s %s/%s: %v", it.gr, it.obj.GetNamespace(), it.obj.GetName(), err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes(), w
}

func TestRoundTrip(t *testing.T) {
	items := roundTripItems()
	if len(items) < 20 {
		t.Fatalf("test wants about 20 items, has %d", len(items))
	}
	data, w := writeArchive(t, items)
	if w.Items() != len(items) {
		t.Errorf("Items() = %d, want %d", w.Items(), len(items))
	}

	names := tarNames(t, data)
	if len(names) == 0 || names[0] != "metadata/version" {
		t.Fatalf("first entry = %v, want metadata/version", names[:min(1, len(names))])
	}
	for _, want := range []string{
		"resources/configmaps/namespaces/shop/settings.json",
		"resources/configmaps/v1-preferredversion/namespaces/shop/settings.json",
		"resources/namespaces/cluster/blog.json",
		"resources/namespaces/v1-preferredversion/cluster/blog.json",
		"resources/deployments.apps/namespaces/blog/worker.json",
		"resources/deployments.apps/v1-preferredversion/namespaces/blog/worker.json",
		"resources/widgets.example.com/v1-preferredversion/namespaces/shop/gear.json",
		"resources/widgets.example.com/v1beta1/namespaces/shop/gear.json",
		"resources/clusterroles.rbac.authorization.k8s.io/cluster/system:aggregate-to-view.json",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s", want)
		}
	}
	// One entry per preferred item per layout, one per other-version item.
	if want := 1 + 2*(len(items)-1) + 1; len(names) != want {
		t.Errorf("archive has %d entries, want %d", len(names), want)
	}

	list := w.ResourceList()
	if got, want := list["v1/ConfigMap"], []string{"blog/feature-flags", "blog/kube-root-ca.crt", "blog/settings", "shop/feature-flags", "shop/kube-root-ca.crt", "shop/settings"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ResourceList[v1/ConfigMap] = %v, want %v", got, want)
	}
	if got, want := list["rbac.authorization.k8s.io/v1/ClusterRole"], []string{"reader", "system:aggregate-to-view", "writer"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ResourceList[ClusterRole] = %v, want %v", got, want)
	}
	if got, want := list["example.com/v1beta1/Widget"], []string{"shop/gear"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ResourceList[v1beta1 Widget] = %v, want %v", got, want)
	}

	c, err := Extract(bytes.NewReader(data), filepath.Join(t.TempDir(), "x"), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if c.Version != FormatVersion {
		t.Errorf("Version = %q, want %s", c.Version, FormatVersion)
	}
	wantCounts := map[string]int{
		"namespaces": 2, "configmaps": 6, "secrets": 2, "deployments.apps": 4,
		"widgets.example.com": 2, "clusterroles.rbac.authorization.k8s.io": 3,
	}
	if len(c.Resources) != len(wantCounts) {
		t.Errorf("Extract indexed %d resources, want %d", len(c.Resources), len(wantCounts))
	}
	byKey := map[string]*unstructured.Unstructured{}
	for _, it := range items {
		if it.preferred {
			byKey[it.gr.String()+"|"+it.obj.GetNamespace()+"|"+it.obj.GetName()] = it.obj
		}
	}
	for grName, n := range wantCounts {
		gr := schema.ParseGroupResource(grName)
		res := c.Resources[gr]
		if res == nil {
			t.Errorf("no %s in the index", gr)
			continue
		}
		if res.GroupResource != gr || res.PreferredVersion != "v1" {
			t.Errorf("%s: GroupResource %v PreferredVersion %q, want %v v1", gr, res.GroupResource, res.PreferredVersion, gr)
		}
		if len(res.Items) != n {
			t.Errorf("%s has %d items, want %d", gr, len(res.Items), n)
		}
		for _, ref := range res.Items {
			if strings.Contains(ref.Path, "preferredversion") {
				t.Errorf("%s: index chose %s, want the un-versioned copy", gr, ref.Path)
			}
			got, err := c.Read(ref)
			if err != nil {
				t.Errorf("Read %v: %v", ref, err)
				continue
			}
			want := byKey[gr.String()+"|"+ref.Namespace+"|"+ref.Name]
			if want == nil {
				t.Errorf("index has %s %s/%s, which was never added", gr, ref.Namespace, ref.Name)
			} else if !reflect.DeepEqual(got.Object, want.Object) {
				t.Errorf("%s %s/%s decoded as\n%v\nwant\n%v", gr, ref.Namespace, ref.Name, got.Object, want.Object)
			}
		}
	}
}

func TestWriterRefusesBadItems(t *testing.T) {
	cm := schema.GroupResource{Resource: "configmaps"}
	tests := []struct {
		name      string
		gr        schema.GroupResource
		version   string
		obj       *unstructured.Unstructured
		wantError string
	}{
		{"nil object", cm, "v1", nil, "nil object"},
		{"no name", cm, "v1", object("v1", "ConfigMap", "ns", "", nil), "object name is empty"},
		{"slash in name", cm, "v1", object("v1", "ConfigMap", "ns", "a/b", nil), "contains '/'"},
		{"dot-dot namespace", cm, "v1", object("v1", "ConfigMap", "..", "a", nil), "not a valid name"},
		{"no kind", cm, "v1", object("v1", "", "ns", "a", nil), "no apiVersion or kind"},
		{"wrong version", cm, "v2", object("v1", "ConfigMap", "ns", "a", nil), "add it under the group and version it was read at"},
		{"wrong group", schema.GroupResource{Group: "apps", Resource: "deployments"}, "v1", object("extensions/v1", "Deployment", "ns", "a", nil), `apiVersion "extensions/v1"`},
		{"layout version", cm, "v1-preferredversion", object("v1", "ConfigMap", "ns", "a", nil), "pass the bare API version"},
		{"no resource", schema.GroupResource{}, "v1", object("v1", "ConfigMap", "ns", "a", nil), "resource is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(&bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Add(tt.gr, tt.version, true, tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("Add error = %v, want it to mention %q", err, tt.wantError)
			}
			if w.Items() != 0 {
				t.Errorf("Items() = %d after a refused Add", w.Items())
			}
		})
	}
}

func TestWriterRefusesDuplicatesAndLateAdds(t *testing.T) {
	cm := schema.GroupResource{Resource: "configmaps"}
	w, err := NewWriter(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	obj := object("v1", "ConfigMap", "ns", "a", nil)
	if err := w.Add(cm, "v1", true, obj); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(cm, "v1", true, obj); err == nil || !strings.Contains(err.Error(), "already in the archive") {
		t.Errorf("second Add error = %v, want 'already in the archive'", err)
	}
	if err := w.Add(cm, "v2", true, object("v2", "ConfigMap", "ns", "a", nil)); err == nil || !strings.Contains(err.Error(), "only one version can be preferred") {
		t.Errorf("Add at a second preferred version error = %v, want 'only one version can be preferred'", err)
	}
	if err := w.Add(cm, "v1", false, obj); err == nil || !strings.Contains(err.Error(), "already in the archive at version v1") {
		t.Errorf("Add at the same version, not preferred, error = %v, want 'already in the archive'", err)
	}
	if err := w.Add(cm, "v1", true, object("v1", "Secret", "ns", "b", nil)); err == nil || !strings.Contains(err.Error(), "had kind ConfigMap") {
		t.Errorf("Add with another kind error = %v, want 'had kind ConfigMap'", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(cm, "v1", true, object("v1", "ConfigMap", "ns", "b", nil)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Add after Close error = %v, want 'closed'", err)
	}
	if w.Items() != 1 {
		t.Errorf("Items() = %d, want 1", w.Items())
	}
}

// Names up to 253 characters need tar's PAX headers and, on disk, a
// shortened file name; the index and the object keep the real name.
func TestRoundTripLongNames(t *testing.T) {
	ns := strings.Repeat("n", 63)
	name := strings.Repeat("a", 240) + ".example.com"
	obj := object("v1", "ConfigMap", ns, name, map[string]any{"data": map[string]any{"k": "v"}})
	data, _ := writeArchive(t, []added{{schema.GroupResource{Resource: "configmaps"}, "v1", true, obj}})
	c, err := Extract(bytes.NewReader(data), t.TempDir(), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	res := c.Resources[schema.GroupResource{Resource: "configmaps"}]
	if res == nil || len(res.Items) != 1 || res.Items[0].Name != name || res.Items[0].Namespace != ns {
		t.Fatalf("index = %+v, want the one long-named ConfigMap", res)
	}
	if strings.Contains(res.Items[0].Path, name) {
		t.Errorf("Path %s holds the whole name, which is over common file name limits", res.Items[0].Path)
	}
	got, err := c.Read(res.Items[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Object, obj.Object) {
		t.Errorf("got %v, want %v", got.Object, obj.Object)
	}
}
