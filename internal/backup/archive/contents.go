package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Contents indexes an extracted archive.
type Contents struct {
	Dir       string // absolute path the archive was extracted into
	Version   string // from metadata/version: "1.1.0", or "1" from Velero before 1.4
	Resources map[schema.GroupResource]*Resource
}

// Resource lists the objects of one resource in the archive.
type Resource struct {
	GroupResource schema.GroupResource
	// PreferredVersion is the version named by the <v>-preferredversion
	// directory; "" for format 1.0 archives, which have none.
	PreferredVersion string
	// Items holds one entry per object, sorted by namespace and name: the
	// un-versioned copy when present, else the preferred-version copy. It
	// is empty when the archive holds the resource only at other versions.
	Items []ItemRef
}

// ItemRef locates one object in an extracted archive.
type ItemRef struct {
	Namespace string // "" for cluster-scoped objects
	Name      string
	Path      string // relative to Contents.Dir
}

// Read decodes one object. It refuses files that are not a JSON object with
// apiVersion, kind and metadata, since nothing could be restored from them.
func (c *Contents) Read(ref ItemRef) (*unstructured.Unstructured, error) {
	if !filepath.IsLocal(ref.Path) {
		return nil, fmt.Errorf("item path %q is not inside the archive directory %s; use an ItemRef from this Contents", ref.Path, c.Dir)
	}
	f, err := os.OpenInRoot(c.Dir, ref.Path)
	if err != nil {
		return nil, fmt.Errorf("reading backup item: %w; was the extract directory changed or removed?", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading backup item %s: %w", ref.Path, err)
	}
	obj, err := decodeItem(data)
	if err != nil {
		return nil, fmt.Errorf("backup item %s is not a valid Kubernetes object: %v; the backup is damaged, skip this item or restore from another backup", ref.Path, err)
	}
	if ref.Name != "" && (obj.GetName() != ref.Name || obj.GetNamespace() != ref.Namespace) {
		return nil, fmt.Errorf("backup item %s holds %s, not %s; the backup is damaged, skip this item or restore from another backup",
			ref.Path, objectName(obj.GetNamespace(), obj.GetName()), objectName(ref.Namespace, ref.Name))
	}
	return obj, nil
}

// decodeItem decodes as the API machinery does (whole numbers become int64)
// but checks the shape itself, to keep the file's content out of errors.
func decodeItem(data []byte) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := utiljson.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("it is not a JSON object")
	}
	for _, field := range []string{"apiVersion", "kind"} {
		if s, ok := m[field].(string); !ok || s == "" {
			return nil, fmt.Errorf("it has no %s", field)
		}
	}
	if _, ok := m["metadata"].(map[string]any); !ok {
		return nil, fmt.Errorf("it has no metadata object")
	}
	return &unstructured.Unstructured{Object: m}, nil
}
