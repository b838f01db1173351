package hub

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestCacheKeepsWhatTheHubReads(t *testing.T) {
	opts := cacheOptions()
	var secretT, nsT func(any) (any, error)
	for o, by := range opts.ByObject {
		switch o.(type) {
		case *corev1.Secret:
			secretT = by.Transform
		case *fv1.ClusterNamespace:
			nsT = by.Transform
		}
	}
	if secretT == nil || nsT == nil {
		t.Fatal("the cache shapes neither Secrets nor ClusterNamespaces")
	}

	meta := metav1.ObjectMeta{Name: "bootstrap-token-abcdef", Namespace: "kube-system", Labels: map[string]string{fv1.LabelCluster: "a"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "flotilla"}}}
	o, err := secretT(&corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{
		"token-id": []byte("abcdef"), "token-secret": []byte("0123456789abcdef"), "expiration": []byte("2026-12-04T15:00:00Z"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*corev1.Secret)
	if len(s.Data) != 1 || string(s.Data["expiration"]) != "2026-12-04T15:00:00Z" {
		t.Errorf("cached token data = %q, want only its expiration", s.Data)
	}
	if s.ManagedFields != nil || s.Labels[fv1.LabelCluster] != "a" {
		t.Errorf("cached token metadata = %+v, want its labels without managedFields", s.ObjectMeta)
	}

	o, err = nsT(&fv1.ClusterNamespace{ObjectMeta: meta, Spec: fv1.ClusterNamespaceSpec{Workspace: "w"}, Status: fv1.ClusterNamespaceStatus{
		Phase: "Active", Labels: map[string]string{"team": "a"}, Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*fv1.ClusterNamespace)
	if n.Status.Conditions != nil || n.ManagedFields != nil {
		t.Errorf("cached namespace keeps conditions %v or managedFields", n.Status.Conditions)
	}
	if n.Spec.Workspace != "w" || n.Status.Phase != "Active" || n.Status.Labels["team"] != "a" {
		t.Errorf("cached namespace lost what policies resolve by: %+v", n)
	}
}
