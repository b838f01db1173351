package agent

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestPlanNamespaces(t *testing.T) {
	now := metav1.Now()
	ns := func(name, ws string, deleting bool) corev1.Namespace {
		n := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if ws != "" {
			n.Labels = map[string]string{fv1.LabelWorkspace: ws}
		}
		if deleting {
			n.DeletionTimestamp = &now
		}
		return n
	}
	cn := func(name, ws string, discovered, deleting bool, phase string) fv1.ClusterNamespace {
		c := fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterNamespaceSpec{Workspace: ws}, Status: fv1.ClusterNamespaceStatus{Phase: phase}}
		if phase != "" {
			c.Status.Labels = map[string]string{fv1.LabelWorkspace: ws}
		}
		if discovered {
			c.Labels = map[string]string{fv1.LabelDiscovered: "true"}
		}
		if deleting {
			c.DeletionTimestamp = &now
		}
		return c
	}
	cases := []struct {
		name   string
		member []corev1.Namespace
		hub    []fv1.ClusterNamespace
		want   []nsAction
	}{
		{"in sync", []corev1.Namespace{ns("a", "default", false)}, []fv1.ClusterNamespace{cn("a", "default", true, false, "Active")}, nil},
		{"discovered goes to default", []corev1.Namespace{ns("a", "", false)}, nil, []nsAction{{"createHub", "a", "default", nil}}},
		{"discovered goes to default whatever its label says", []corev1.Namespace{ns("a", "shop", false)}, nil, []nsAction{{"createHub", "a", "default", nil}}},
		{"terminating in cluster is not discovered", []corev1.Namespace{ns("a", "", true)}, nil, nil},
		{"created through the hub", nil, []fv1.ClusterNamespace{cn("web", "shop", false, false, "")}, []nsAction{{"createMember", "web", "shop", nil}}},
		{"deleted in the cluster", nil, []fv1.ClusterNamespace{cn("a", "default", true, false, "Active")}, []nsAction{{"deleteHub", "a", "", nil}}},
		{"deleted through the hub", []corev1.Namespace{ns("web", "shop", false)}, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, []nsAction{{"deleteMember", "web", "", nil}}},
		{"deletion waits for the cluster", []corev1.Namespace{ns("web", "shop", true)}, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, nil},
		{"deletion done in the cluster", nil, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, []nsAction{{"release", "web", "", nil}}},
		{"label drift and phase", []corev1.Namespace{ns("a", "", false)}, []fv1.ClusterNamespace{cn("a", "shop", false, false, "")}, []nsAction{{"labelMember", "a", "shop", nil}, {"status", "a", "Active", map[string]string{fv1.LabelWorkspace: "shop"}}}},
		{"label set and reported in one pass", []corev1.Namespace{withLabel(ns("a", "default", false), "team", "web")}, []fv1.ClusterNamespace{cn("a", "shop", false, false, "")},
			[]nsAction{{"labelMember", "a", "shop", nil}, {"status", "a", "Active", map[string]string{fv1.LabelWorkspace: "shop", "team": "web"}}}},
		{"labels mirrored", []corev1.Namespace{withLabel(ns("a", "default", false), "team", "web")}, []fv1.ClusterNamespace{cn("a", "default", true, false, "Active")},
			[]nsAction{{"status", "a", "Active", map[string]string{fv1.LabelWorkspace: "default", "team": "web"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planNamespaces(tc.member, tc.hub, false); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func withLabel(n corev1.Namespace, k, v string) corev1.Namespace {
	n.Labels[k] = v
	return n
}

// A read-only agent writes nothing in its cluster: the plan has no action
// on the member, and what the hub asks of it is let go or left waiting.
func TestPlanNamespacesReadOnly(t *testing.T) {
	now := metav1.Now()
	member := func(name string, labels map[string]string) corev1.Namespace {
		return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	hub := func(name, ws string, deleting bool) fv1.ClusterNamespace {
		c := fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterNamespaceSpec{Workspace: ws}}
		if deleting {
			c.DeletionTimestamp = &now
		}
		return c
	}
	cases := []struct {
		name   string
		member []corev1.Namespace
		hub    []fv1.ClusterNamespace
		want   []nsAction
	}{
		{"discovered as ever", []corev1.Namespace{member("a", nil)}, nil, []nsAction{{"createHub", "a", "default", nil}}},
		{"created through the hub: not created", nil, []fv1.ClusterNamespace{hub("web", "shop", false)}, nil},
		{"deleted through the hub: let go, not deleted", []corev1.Namespace{member("web", nil)}, []fv1.ClusterNamespace{hub("web", "shop", true)}, []nsAction{{"release", "web", "", nil}}},
		{"workspace not labelled; status as the cluster has it", []corev1.Namespace{member("a", map[string]string{"team": "web"})}, []fv1.ClusterNamespace{hub("a", "shop", false)},
			[]nsAction{{"status", "a", "Active", map[string]string{"team": "web"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planNamespaces(tc.member, tc.hub, true)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for _, a := range got {
				if !a.onHub() {
					t.Errorf("action %v writes to the cluster", a)
				}
			}
		})
	}
}
