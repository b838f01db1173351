package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"flotilla.dev/flotilla/internal/testenv"
)

func TestAttachCLI(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	hub := env.Hub.Kubeconfig

	// Without --cluster-kubeconfig: the manifest to apply.
	out := hubOK(t, hub, "cluster", "attach", "web-1", "--label", "env=prod")
	kinds := map[string]bool{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var obj struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, out)
		}
		kinds[obj.Kind] = true
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRoleBinding", "Secret", "Deployment"} {
		if !kinds[k] {
			t.Errorf("manifest lacks a %s:\n%s", k, out)
		}
	}
	if list := hubOK(t, hub, "cluster", "get", "web-1", "-o", "yaml"); !strings.Contains(list, "env: prod") {
		t.Errorf("label not set:\n%s", list)
	}

	// Bad input: a clear error each, nothing half-created.
	corrupt := filepath.Join(t.TempDir(), "bad.kubeconfig")
	os.WriteFile(corrupt, []byte("clusters: [oops"), 0o600)
	hubFails(t, hub, "already exists", "cluster", "attach", "web-1")
	hubFails(t, hub, "DNS-1123", "cluster", "attach", "Web_1")
	hubFails(t, hub, `cluster group "nowhere" does not exist`, "cluster", "attach", "web-2", "--group", "nowhere")
	hubFails(t, hub, "--cluster-kubeconfig", "cluster", "attach", "web-3", "--cluster-kubeconfig", corrupt)
	hubFails(t, hub, "not k=v", "cluster", "attach", "web-4", "--label", "novalue")
	list := hubOK(t, hub, "cluster", "list")
	for _, name := range []string{"web-2", "web-3", "web-4", "Web_1"} {
		if strings.Contains(list, name) {
			t.Errorf("failed attach left cluster %s:\n%s", name, list)
		}
	}

	// A never-registered cluster detaches at once; a second detach says it is gone.
	hubOK(t, hub, "cluster", "detach", "web-1")
	hubFails(t, hub, "not found", "cluster", "detach", "web-1")
}
