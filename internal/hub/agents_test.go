package hub

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestAgentActsOnOnlyWhatItDidNotWrite(t *testing.T) {
	base := fv1.ClusterNamespace{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{fv1.LabelDiscovered: "true"}, Finalizers: []string{fv1.NamespaceFinalizer}},
		Spec:       fv1.ClusterNamespaceSpec{Workspace: "default"},
	}
	now := metav1.NewTime(time.Now())
	for name, c := range map[string]struct {
		change func(*fv1.ClusterNamespace)
		want   bool
	}{
		"status": {func(n *fv1.ClusterNamespace) {
			n.Status.Phase = "Active"
			n.Status.Labels = map[string]string{"a": "b"}
		}, false},
		"resourceVersion": {func(n *fv1.ClusterNamespace) { n.ResourceVersion = "7" }, false},
		"deleted":         {func(n *fv1.ClusterNamespace) { n.DeletionTimestamp = &now }, true},
		"finalizer":       {func(n *fv1.ClusterNamespace) { n.Finalizers = nil }, true},
		"labels":          {func(n *fv1.ClusterNamespace) { n.Labels = nil }, true},
		"workspace":       {func(n *fv1.ClusterNamespace) { n.Spec.Workspace = "shop" }, true},
	} {
		after := base.DeepCopy()
		c.change(after)
		if got := agentActsOn(&base, after); got != c.want {
			t.Errorf("%s: agentActsOn = %v, want %v", name, got, c.want)
		}
	}
}
