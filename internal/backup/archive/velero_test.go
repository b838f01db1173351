package archive

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// json bodies shaped like what Velero stores: whole API objects, server
// fields and all.
const (
	podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"mypod","namespace":"namespace1","uid":"0b5d","resourceVersion":"42"},` +
		`"spec":{"nodeName":"node-a","containers":[{"name":"c","image":"busybox"}]},"status":{"phase":"Running"}}`
	pvJSON     = `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv01"},"spec":{"capacity":{"storage":"1Gi"}}}`
	hpaV2JSON  = `{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"hpa-to-the-rescue","namespace":"namespace1"},"spec":{"maxReplicas":5}}`
	hpaV1JSON  = `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"hpa-to-the-rescue","namespace":"namespace1"},"spec":{"maxReplicas":5}}`
	jobJSON    = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"awesome-job","namespace":"namespace2"},"spec":{"completions":1}}`
	configJSON = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"myconfigmap","namespace":"namespace1"},"data":{"k":"v"}}`
)

// veleroFixture follows the layout in Velero's "Output file format" page for
// format 1.1, taken with EnableAPIGroupVersions: un-versioned copies beside
// <v>-preferredversion copies, and a non-preferred version of one resource.
func veleroFixture(t *testing.T) []byte {
	return tarGz(t,
		entry{name: "metadata/version", body: "1.1.0\n"},
		entry{name: "resources/persistentvolumes/cluster/pv01.json", body: pvJSON},
		entry{name: "resources/persistentvolumes/v1-preferredversion/cluster/pv01.json", body: pvJSON},
		entry{name: "resources/pods/namespaces/namespace1/mypod.json", body: podJSON},
		entry{name: "resources/pods/v1-preferredversion/namespaces/namespace1/mypod.json", body: podJSON},
		entry{name: "resources/horizontalpodautoscalers.autoscaling/namespaces/namespace1/hpa-to-the-rescue.json", body: hpaV2JSON},
		entry{name: "resources/horizontalpodautoscalers.autoscaling/v2-preferredversion/namespaces/namespace1/hpa-to-the-rescue.json", body: hpaV2JSON},
		entry{name: "resources/horizontalpodautoscalers.autoscaling/v1/namespaces/namespace1/hpa-to-the-rescue.json", body: hpaV1JSON},
		// Only the preferred-version copy: the index must fall back to it.
		entry{name: "resources/jobs.batch/v1-preferredversion/namespaces/namespace2/awesome-job.json", body: jobJSON},
		// A file a later 1.x minor version might add; readers ignore it.
		entry{name: "metadata/notes.txt", body: "hello"},
	)
}

func TestExtractVeleroArchive(t *testing.T) {
	c, err := Extract(bytes.NewReader(veleroFixture(t)), filepath.Join(t.TempDir(), "restore"), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	tests := []struct {
		gr         string
		preferred  string
		namespace  string
		name       string
		apiVersion string
		pathHas    string
	}{
		{"persistentvolumes", "v1", "", "pv01", "v1", filepath.FromSlash("persistentvolumes/cluster/pv01.json")},
		{"pods", "v1", "namespace1", "mypod", "v1", filepath.FromSlash("pods/namespaces/namespace1/mypod.json")},
		{"horizontalpodautoscalers.autoscaling", "v2", "namespace1", "hpa-to-the-rescue", "autoscaling/v2", filepath.FromSlash("autoscaling/namespaces/")},
		{"jobs.batch", "v1", "namespace2", "awesome-job", "batch/v1", "v1-preferredversion"},
	}
	if len(c.Resources) != len(tests) {
		t.Errorf("indexed %d resources, want %d", len(c.Resources), len(tests))
	}
	for _, tt := range tests {
		res := c.Resources[schema.ParseGroupResource(tt.gr)]
		if res == nil {
			t.Errorf("%s missing from the index", tt.gr)
			continue
		}
		if res.PreferredVersion != tt.preferred {
			t.Errorf("%s PreferredVersion = %q, want %q", tt.gr, res.PreferredVersion, tt.preferred)
		}
		if len(res.Items) != 1 {
			t.Errorf("%s has %d items, want 1: %v", tt.gr, len(res.Items), res.Items)
			continue
		}
		ref := res.Items[0]
		if ref.Namespace != tt.namespace || ref.Name != tt.name || !strings.Contains(ref.Path, tt.pathHas) {
			t.Errorf("%s item = %+v, want %s/%s in a path containing %q", tt.gr, ref, tt.namespace, tt.name, tt.pathHas)
		}
		obj, err := c.Read(ref)
		if err != nil {
			t.Errorf("Read %s: %v", tt.gr, err)
			continue
		}
		if obj.GetAPIVersion() != tt.apiVersion || obj.GetName() != tt.name {
			t.Errorf("%s read as %s %s, want %s %s", tt.gr, obj.GetAPIVersion(), obj.GetName(), tt.apiVersion, tt.name)
		}
	}
}

// Format 1.0 (Velero before 1.4): a bare major version and no version dirs.
// Tools such as tar also write "./" prefixes and directory entries.
func TestExtractFormat1Archive(t *testing.T) {
	data := tarGz(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./metadata/", typ: tar.TypeDir},
		entry{name: "./metadata/version", body: "1\n"},
		entry{name: "./resources/configmaps/namespaces/namespace1/", typ: tar.TypeDir},
		entry{name: "./resources/configmaps/namespaces/namespace1/myconfigmap.json", body: configJSON},
	)
	c, err := Extract(bytes.NewReader(data), t.TempDir(), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if c.Version != "1" {
		t.Errorf("Version = %q, want 1", c.Version)
	}
	res := c.Resources[schema.GroupResource{Resource: "configmaps"}]
	if res == nil || res.PreferredVersion != "" || len(res.Items) != 1 {
		t.Fatalf("configmaps = %+v, want one item and no preferred version", res)
	}
	obj, err := c.Read(res.Items[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructuredString(obj.Object, "data", "k"); got != "v" {
		t.Errorf("data.k = %q, want v", got)
	}
}

func TestReadRefusesBadItems(t *testing.T) {
	data := tarGz(t,
		entry{name: "metadata/version", body: "1.1.0"},
		entry{name: "resources/configmaps/namespaces/ns/broken.json", body: `{"apiVersion":"v1","kind":`},
		entry{name: "resources/configmaps/namespaces/ns/kindless.json", body: `{"apiVersion":"v1","metadata":{"name":"kindless"}}`},
		entry{name: "resources/configmaps/namespaces/ns/list.json", body: `[1,2]`},
		entry{name: "resources/configmaps/namespaces/ns/renamed.json", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other","namespace":"ns"}}`},
	)
	c, err := Extract(bytes.NewReader(data), t.TempDir(), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	want := map[string]string{
		"broken":   "not a valid Kubernetes object",
		"kindless": "has no kind",
		"list":     "not a valid Kubernetes object",
		"renamed":  "holds ns/other, not ns/renamed",
	}
	for _, ref := range c.Resources[schema.GroupResource{Resource: "configmaps"}].Items {
		_, err := c.Read(ref)
		if err == nil || !strings.Contains(err.Error(), want[ref.Name]) {
			t.Errorf("Read %s error = %v, want it to mention %q", ref.Name, err, want[ref.Name])
		}
	}
	if _, err := c.Read(ItemRef{Path: filepath.FromSlash("../outside.json")}); err == nil || !strings.Contains(err.Error(), "not inside") {
		t.Errorf("Read of ../outside.json error = %v, want 'not inside'", err)
	}
}
