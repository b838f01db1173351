package bench

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakedynamic "k8s.io/client-go/dynamic/fake"
)

// A simulated cluster keeps what the agent applies, new objects included.
func TestSimulatedClusterStoresApplies(t *testing.T) {
	ctx := context.Background()
	dyn := fakedynamic.NewSimpleDynamicClientWithCustomListKinds(unstructuredScheme(), nil)
	applyStores(dyn)
	crbs := dyn.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"})
	binding := func(role string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("rbac.authorization.k8s.io/v1")
		u.SetKind("ClusterRoleBinding")
		u.SetName("b")
		unstructured.SetNestedField(u.Object, role, "roleRef", "name")
		return u
	}
	opts := metav1.ApplyOptions{FieldManager: "test", Force: true}
	if _, err := crbs.Apply(ctx, "b", binding("view"), opts); err != nil {
		t.Fatalf("applying a new object: %v", err)
	}
	if _, err := crbs.Apply(ctx, "b", binding("edit"), opts); err != nil {
		t.Fatalf("applying it again: %v", err)
	}
	got, err := crbs.Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if role, _, _ := unstructured.NestedString(got.Object, "roleRef", "name"); role != "edit" {
		t.Errorf("the stored binding's role is %q, want the last applied, edit", role)
	}
}
