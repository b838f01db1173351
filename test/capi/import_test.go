package capi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"flotilla.dev/flotilla/internal/provider/clusterapi"
)

// createCAPICluster creates a Cluster API Cluster on mgmt as a user of
// Cluster API would, from the fleet namespace's ClusterClass.
func createCAPICluster(t *testing.T, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2",
		"kind":       "Cluster",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"topology": map[string]any{
			"classRef":     map[string]any{"name": class, "namespace": fleetNS},
			"version":      "v1.36.3",
			"controlPlane": map[string]any{"replicas": int64(1)},
		}},
	}}
	if _, err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// deadKubeconfig is mgmt's kubeconfig with a server nothing listens on.
func deadKubeconfig(t *testing.T) []byte {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(mgmt.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://127.0.0.1:1"
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImport imports two clusters Cluster API made without Flotilla: one
// whose kubeconfig is published (the management cluster itself, as a
// self-managed one is), one still without, which is skipped.
func TestImport(t *testing.T) {
	ctx := context.Background()
	createCAPICluster(t, "imported", "legacy-a")
	createCAPICluster(t, "imported", "legacy-b")
	kc, err := os.ReadFile(mgmt.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	publishKubeconfig(t, "imported", "legacy-a", kc)

	out := flotilla(t, "cluster", "import", "--capi-kubeconfig", mgmt.Kubeconfig, "--namespace", "imported")
	for _, want := range []string{
		"imported/legacy-a: attached: attached as cluster legacy-a",
		"imported/legacy-b: skipped: no kubeconfig yet",
		"2 Cluster API clusters in namespace imported: 1 attached, 1 skipped, 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("import did not say %q:\n%s", want, out)
		}
	}
	c, err := hubCluster(ctx, "legacy-a")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Annotations[clusterapi.AnnotationImportedFrom]; got != "clusterapi/imported/legacy-a" {
		t.Fatalf("imported-from %q", got)
	}
	if c.Spec.Lifecycle != nil || c.Spec.Group != "default" {
		t.Fatalf("an imported cluster is attached, in the default group: %+v", c.Spec)
	}
	var dep appsv1.Deployment
	if err := mgmt.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-agent"}, &dep); err != nil {
		t.Fatalf("the agent was not installed into legacy-a: %v", err)
	}
	if _, err := hubCluster(ctx, "legacy-b"); !apierrors.IsNotFound(err) {
		t.Fatalf("legacy-b, without a kubeconfig, is on the hub: %v", err)
	}

	// Again: legacy-a is on the hub already.
	out = flotilla(t, "cluster", "import", "--capi-kubeconfig", mgmt.Kubeconfig, "--namespace", "imported")
	if !strings.Contains(out, "imported/legacy-a: skipped: already on the hub as cluster legacy-a (imported before)") || !strings.Contains(out, "0 attached, 2 skipped") {
		t.Fatalf("second import:\n%s", out)
	}

	// A cluster whose kubeconfig leads nowhere fails, the exit code says
	// so, and the hub keeps nothing of it.
	createCAPICluster(t, "broken", "legacy-c")
	publishKubeconfig(t, "broken", "legacy-c", deadKubeconfig(t))
	out, err = flotillaErr("cluster", "import", "--capi-kubeconfig", mgmt.Kubeconfig, "--namespace", "broken")
	if err == nil || !strings.Contains(out, "broken/legacy-c: failed:") || !strings.Contains(out, "0 attached, 0 skipped, 1 failed") || !strings.Contains(err.Error(), "1 of 1 clusters failed to import") {
		t.Fatalf("import of an unreachable cluster: %v\n%s", err, out)
	}
	if _, err := hubCluster(ctx, "legacy-c"); !apierrors.IsNotFound(err) {
		t.Fatalf("a failed import left legacy-c on the hub: %v", err)
	}

	// Bad input: no such group; a kubeconfig of no management cluster.
	if _, err := flotillaErr("cluster", "import", "--capi-kubeconfig", mgmt.Kubeconfig, "--group", "nope"); err == nil || !strings.Contains(err.Error(), `cluster group "nope" does not exist`) {
		t.Fatalf("import into a missing group: %v", err)
	}
	if _, err := flotillaErr("cluster", "import", "--capi-kubeconfig", workload.Kubeconfig); err == nil || !strings.Contains(err.Error(), "does not serve Cluster API's clusters") {
		t.Fatalf("import from a cluster without Cluster API: %v", err)
	}
	dead := filepath.Join(t.TempDir(), "dead.kubeconfig")
	if err := os.WriteFile(dead, deadKubeconfig(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := flotillaErr("cluster", "import", "--capi-kubeconfig", dead); err == nil || !strings.Contains(err.Error(), "cannot reach the management cluster at https://127.0.0.1:1") {
		t.Fatalf("import from an unreachable management cluster: %v", err)
	}
}
