package agent

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"flotilla.dev/flotilla/internal/policy"
)

func TestLabelPatches(t *testing.T) {
	const enforce = "pod-security.kubernetes.io/enforce"
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	add := func(name string, labels map[string]string, managed bool) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if managed {
			ns.Annotations = map[string]string{annotationPodSecurity: "true"}
		}
		if err := idx.Add(ns); err != nil {
			t.Fatal(err)
		}
	}
	add("new", nil, false)                                       // governed now: labelled and marked
	add("same", map[string]string{enforce: "baseline"}, true)    // as desired: untouched
	add("stale", map[string]string{enforce: "restricted"}, true) // no longer governed: cleared
	add("theirs", map[string]string{enforce: "privileged"}, false)
	want := map[string]policy.NamespaceSecurity{
		"new":  {Labels: map[string]string{enforce: "baseline"}},
		"same": {Labels: map[string]string{enforce: "baseline"}},
	}
	patches, err := labelPatches(corelisters.NewNamespaceLister(idx), want)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]map[string]any{}
	for _, p := range patches {
		var m map[string]map[string]map[string]any
		if err := json.Unmarshal(p.patch, &m); err != nil {
			t.Fatal(err)
		}
		got[p.namespace] = m["metadata"]
	}
	if len(got) != 2 {
		t.Fatalf("patches for %v, want new and stale only", keys(got))
	}
	if got["new"]["labels"][enforce] != "baseline" || got["new"]["annotations"][annotationPodSecurity] != "true" {
		t.Errorf("new: %v", got["new"])
	}
	if v, ok := got["stale"]["labels"][enforce]; !ok || v != nil {
		t.Errorf("stale keeps its label: %v", got["stale"])
	}
	if v, ok := got["stale"]["annotations"][annotationPodSecurity]; !ok || v != nil {
		t.Errorf("stale keeps Flotilla's mark: %v", got["stale"])
	}
}

func TestLabelsDrifted(t *testing.T) {
	ns := func(labels, ann map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: labels, Annotations: ann}}
	}
	base := ns(map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "team": "a"}, nil)
	for _, tc := range []struct {
		name string
		cur  *corev1.Namespace
		want bool
	}{
		{"another label", ns(map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "team": "b"}, nil), false},
		{"level removed", ns(map[string]string{"team": "a"}, nil), true},
		{"warn added", ns(map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted", "team": "a"}, nil), true},
		{"mark changed", ns(base.Labels, map[string]string{annotationPodSecurity: "true"}), true},
	} {
		if got := labelsDrifted(base, tc.cur); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
