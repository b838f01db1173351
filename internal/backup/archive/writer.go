package archive

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Writer streams objects into an archive. It encodes and writes each object
// as it is added and keeps only its identity (resource, namespace, name and
// versions), which serves both to refuse duplicates and to build the
// resource list, so memory stays small however large the objects are.
type Writer struct {
	gz      *gzip.Writer
	tw      *tar.Writer
	modTime time.Time
	items   int
	seen    map[objectID]objectVersions
	kinds   map[schema.GroupVersionResource]string
	err     error // first write failure; the archive is unusable after it
	closed  bool
}

type objectID struct {
	gr        schema.GroupResource
	namespace string
	name      string
}

// objectVersions records the versions at which an object was added.
type objectVersions struct {
	preferred string   // "" until added at its preferred version
	others    []string // versions added as non-preferred
}

func (v objectVersions) has(version string) bool {
	return v.preferred == version || slices.Contains(v.others, version)
}

// NewWriter starts an archive on w and writes metadata/version first, as
// Velero does. Close finishes the archive but does not close w.
func NewWriter(w io.Writer) (*Writer, error) {
	gz := gzip.NewWriter(w)
	aw := &Writer{
		gz:      gz,
		tw:      tar.NewWriter(gz),
		modTime: time.Now().UTC().Truncate(time.Second),
		seen:    map[objectID]objectVersions{},
		kinds:   map[schema.GroupVersionResource]string{},
	}
	// Velero ends the version with a newline; readers trim it.
	if err := aw.writeFile(versionFile, []byte(FormatVersion+"\n")); err != nil {
		return nil, err
	}
	return aw, nil
}

// Add writes obj, an object of gr read from the API at version. When that
// version is the preferred one it is stored twice, as format 1.1 requires:
// un-versioned for 1.0 readers and under <version>-preferredversion. Other
// versions go only under <version>.
func (w *Writer) Add(gr schema.GroupResource, version string, preferred bool, obj *unstructured.Unstructured) error {
	switch {
	case w.closed:
		return errors.New("archive writer is closed; add every item before calling Close")
	case w.err != nil:
		return w.err
	}
	if err := checkItem(gr, version, obj); err != nil {
		return err
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	id := objectID{gr, ns, name}
	seen := w.seen[id]
	switch {
	case seen.has(version):
		return fmt.Errorf("%s %s is already in the archive at version %s; add each object once per version", gr, objectName(ns, name), version)
	case preferred && seen.preferred != "":
		return fmt.Errorf("%s %s was already added at its preferred version %s; only one version can be preferred", gr, objectName(ns, name), seen.preferred)
	}
	gvr := gr.WithVersion(version)
	if kind, ok := w.kinds[gvr]; ok && kind != obj.GetKind() {
		return fmt.Errorf("%s %s has kind %s, but earlier %s objects had kind %s; add each resource's objects with the kind the API returns", gr, objectName(ns, name), obj.GetKind(), gvr, kind)
	}
	var paths []string
	if preferred {
		paths = []string{itemPath(gr, "", ns, name), itemPath(gr, version+preferredSuffix, ns, name)}
	} else {
		paths = []string{itemPath(gr, version, ns, name)}
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return fmt.Errorf("%s %s cannot be encoded as JSON: %v; it holds a value that is not plain JSON data", gr, objectName(ns, name), err)
	}
	for _, p := range paths {
		if err := w.writeFile(p, data); err != nil {
			return err
		}
	}
	if preferred {
		seen.preferred = version
	} else {
		seen.others = append(seen.others, version)
	}
	w.seen[id] = seen
	w.kinds[gvr] = obj.GetKind()
	w.items++
	return nil
}

// Items is the number of objects added so far.
func (w *Writer) Items() int { return w.items }

// ResourceList is what Velero stores beside a backup as
// <backup>-resource-list.json.gz: for each "<apiVersion>/<Kind>" (for
// example "v1/ConfigMap" or "apps/v1/Deployment"), the sorted "ns/name" of
// its namespaced objects or "name" of its cluster-scoped ones.
func (w *Writer) ResourceList() map[string][]string { return resourceList(w.seen, w.kinds) }

// Close finishes the tar and gzip streams. It does not close the
// underlying writer. An archive is incomplete until Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.tw.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("finishing the archive's tar stream: %w; the archive is incomplete, write it again", err)
	}
	if err := w.gz.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("finishing the archive's gzip stream: %w; the archive is incomplete, write it again", err)
	}
	return w.err
}

func (w *Writer) writeFile(name string, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     int64(len(data)),
		ModTime:  w.modTime,
	}
	err := w.tw.WriteHeader(hdr)
	if err == nil {
		_, err = w.tw.Write(data)
	}
	if err != nil {
		w.err = fmt.Errorf("writing %s to the archive: %w; the archive is incomplete, write it again", name, err)
	}
	return w.err
}

// objectName is the "ns/name" or "name" form Velero uses in resource lists.
func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
