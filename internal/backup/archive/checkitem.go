package archive

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// checkItem refuses objects the archive could not store faithfully or that
// a reader could not decode again.
func checkItem(gr schema.GroupResource, version string, obj *unstructured.Unstructured) error {
	if obj == nil {
		return errors.New("cannot add a nil object to the archive")
	}
	if err := checkSegment("resource", gr.Resource); err != nil {
		return fmt.Errorf("cannot add to the archive: %w", err)
	}
	if err := checkSegment("resource", gr.String()); err != nil {
		return fmt.Errorf("cannot add to the archive: %w", err)
	}
	if err := checkSegment("version", version); err != nil {
		return fmt.Errorf("cannot add %s to the archive: %w", gr, err)
	}
	if version == clusterDir || version == namespacesDir || strings.HasSuffix(version, preferredSuffix) {
		return fmt.Errorf("cannot add %s to the archive: version %q would be read back as a layout directory; pass the bare API version such as v1", gr, version)
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	if err := checkSegment("object name", name); err != nil {
		return fmt.Errorf("cannot add a %s to the archive: %w", gr, err)
	}
	if ns != "" {
		if err := checkSegment("namespace", ns); err != nil {
			return fmt.Errorf("cannot add %s %s to the archive: %w", gr, name, err)
		}
	}
	if obj.GetKind() == "" || obj.GetAPIVersion() == "" {
		return fmt.Errorf("%s %s has no apiVersion or kind; set both (as the API returns them) so the archive can be read back", gr, objectName(ns, name))
	}
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil || gv.Group != gr.Group || gv.Version != version {
		want := schema.GroupVersion{Group: gr.Group, Version: version}
		return fmt.Errorf("%s %s has apiVersion %q but is being added as %s; add it under the group and version it was read at", gr, objectName(ns, name), obj.GetAPIVersion(), want)
	}
	return nil
}
