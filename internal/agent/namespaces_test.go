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
		{"discovered goes to default", []corev1.Namespace{ns("a", "", false)}, nil, []nsAction{{"createHub", "a", "default"}}},
		{"discovered keeps its labelled workspace", []corev1.Namespace{ns("a", "shop", false)}, nil, []nsAction{{"createHub", "a", "shop"}}},
		{"terminating in cluster is not discovered", []corev1.Namespace{ns("a", "", true)}, nil, nil},
		{"created through the hub", nil, []fv1.ClusterNamespace{cn("web", "shop", false, false, "")}, []nsAction{{"createMember", "web", "shop"}}},
		{"deleted in the cluster", nil, []fv1.ClusterNamespace{cn("a", "default", true, false, "Active")}, []nsAction{{"deleteHub", "a", ""}}},
		{"deleted through the hub", []corev1.Namespace{ns("web", "shop", false)}, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, []nsAction{{"deleteMember", "web", ""}}},
		{"deletion waits for the cluster", []corev1.Namespace{ns("web", "shop", true)}, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, nil},
		{"deletion done in the cluster", nil, []fv1.ClusterNamespace{cn("web", "shop", false, true, "Active")}, []nsAction{{"release", "web", ""}}},
		{"label drift and phase", []corev1.Namespace{ns("a", "", false)}, []fv1.ClusterNamespace{cn("a", "shop", false, false, "")}, []nsAction{{"labelMember", "a", "shop"}, {"phase", "a", "Active"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planNamespaces(tc.member, tc.hub); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
