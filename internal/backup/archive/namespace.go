package archive

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// namespaceNameLabel is set by the API server to a Namespace's name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// MapNamespace moves obj according to mapping (old namespace -> new): its
// metadata.namespace and, for a Namespace, its name. References that name a
// namespace follow too: ServiceAccount subjects of RoleBindings and
// ClusterRoleBindings, and a PersistentVolume's claimRef, as Velero does.
func MapNamespace(obj *unstructured.Unstructured, mapping map[string]string) {
	if obj == nil || len(mapping) == 0 {
		return
	}
	if to, ok := mapping[obj.GetNamespace()]; ok && obj.GetNamespace() != "" {
		obj.SetNamespace(to)
	}
	gvk := obj.GroupVersionKind()
	switch {
	case gvk.Group == "" && gvk.Kind == "Namespace":
		to, ok := mapping[obj.GetName()]
		if !ok {
			return
		}
		obj.SetName(to)
		if labels := obj.GetLabels(); labels[namespaceNameLabel] != "" {
			labels[namespaceNameLabel] = to
			obj.SetLabels(labels)
		}
	case gvk.Group == "rbac.authorization.k8s.io" && (gvk.Kind == "RoleBinding" || gvk.Kind == "ClusterRoleBinding"):
		mapSubjects(obj, mapping)
	case gvk.Group == "" && gvk.Kind == "PersistentVolume":
		ns, _, _ := unstructured.NestedString(obj.Object, "spec", "claimRef", "namespace")
		if to, ok := mapping[ns]; ok && ns != "" {
			_ = unstructured.SetNestedField(obj.Object, to, "spec", "claimRef", "namespace")
		}
	}
}

func mapSubjects(obj *unstructured.Unstructured, mapping map[string]string) {
	subjects, found, err := unstructured.NestedSlice(obj.Object, "subjects")
	if !found || err != nil {
		return
	}
	for _, s := range subjects {
		subject, ok := s.(map[string]any)
		if !ok || subject["kind"] != "ServiceAccount" {
			continue
		}
		if ns, _ := subject["namespace"].(string); ns != "" {
			if to, ok := mapping[ns]; ok {
				subject["namespace"] = to
			}
		}
	}
	_ = unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
}

// ParseNamespaceMapping parses the CLI form "old1:new1,old2:new2". An empty
// string is an empty mapping. It refuses a namespace mapped twice and two
// namespaces mapped onto one, which would merge them silently.
func ParseNamespaceMapping(s string) (map[string]string, error) {
	mapping := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return mapping, nil
	}
	targets := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			return nil, fmt.Errorf("namespace mapping %q has an empty pair; remove the extra comma", s)
		}
		from, to, ok := strings.Cut(pair, ":")
		if !ok || from == "" || to == "" || strings.Contains(to, ":") {
			return nil, fmt.Errorf("namespace mapping %q is malformed: each pair must be old:new, pairs separated by commas (e.g. prod:prod-copy,web:web-copy)", pair)
		}
		for _, ns := range []string{from, to} {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return nil, fmt.Errorf("namespace mapping %q: %q is not a valid namespace name: %s", pair, ns, strings.Join(errs, "; "))
			}
		}
		if prev, dup := mapping[from]; dup {
			return nil, fmt.Errorf("namespace %q is mapped twice (to %q and %q); map each namespace once", from, prev, to)
		}
		if prev, dup := targets[to]; dup {
			return nil, fmt.Errorf("namespaces %q and %q are both mapped to %q, which would merge them; map each onto its own namespace", prev, from, to)
		}
		mapping[from] = to
		targets[to] = from
	}
	return mapping, nil
}
