package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/testenv"
)

// hubRun runs flotilla with args and FLOTILLA_HUB_KUBECONFIG set to hubKubeconfig
// (empty means unset), returning stdout, stderr and whether it exited 0.
func hubRun(t *testing.T, hubKubeconfig string, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(flotilla(t), args...)
	cmd.Dir = t.TempDir() // so the default .flotilla/hub/admin.kubeconfig is absent
	cmd.Env = append(os.Environ(), "FLOTILLA_HUB_KUBECONFIG="+hubKubeconfig)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

// hubOK runs flotilla and fails the test unless it succeeds.
func hubOK(t *testing.T, hubKubeconfig string, args ...string) string {
	t.Helper()
	out, errOut, success := hubRun(t, hubKubeconfig, args...)
	if !success {
		t.Fatalf("flotilla %s: %s", strings.Join(args, " "), errOut)
	}
	return out
}

// hubFails runs flotilla, wants a non-zero exit with one line on stderr
// containing want, and returns that line.
func hubFails(t *testing.T, hubKubeconfig, want string, args ...string) string {
	t.Helper()
	out, errOut, success := hubRun(t, hubKubeconfig, args...)
	if success {
		t.Fatalf("flotilla %s: exit 0, want failure; stdout:\n%s", strings.Join(args, " "), out)
	}
	msg := strings.TrimSpace(errOut)
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "flotilla: ") || !strings.Contains(msg, want) {
		t.Fatalf("flotilla %s: want one line containing %q, got:\n%s", strings.Join(args, " "), want, msg)
	}
	return msg
}

func tableHeader(table string) string {
	return strings.Join(strings.Fields(strings.SplitN(table, "\n", 2)[0]), " ")
}

func TestFleetCLI(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	kc := env.Hub.Kubeconfig

	t.Run("clustergroup create list delete", func(t *testing.T) {
		out := hubOK(t, kc, "clustergroup", "create", "prod", "--description", "production clusters")
		if !strings.Contains(out, "prod") {
			t.Errorf("create printed %q", out)
		}
		hubFails(t, kc, `cluster group "prod" already exists`, "clustergroup", "create", "prod")
		hubFails(t, kc, "DNS-1123", "clustergroup", "create", "Bad_Name")

		out = hubOK(t, kc, "clustergroup", "list")
		if h := tableHeader(out); h != "NAME CLUSTERS DESCRIPTION AGE" {
			t.Errorf("clustergroup list header = %q", h)
		}
		if !strings.Contains(out, "production clusters") || !strings.Contains(out, "default") {
			t.Errorf("clustergroup list:\n%s", out)
		}

		hubOK(t, kc, "clustergroup", "delete", "prod")
		if out := hubOK(t, kc, "clustergroup", "list"); strings.Contains(out, "prod") {
			t.Errorf("prod listed after delete:\n%s", out)
		}
		hubFails(t, kc, `cluster group "prod" not found; see 'flotilla clustergroup list'`, "clustergroup", "delete", "prod")
		hubFails(t, kc, "the default cluster group always exists", "clustergroup", "delete", "default")
	})

	t.Run("workspace create list delete", func(t *testing.T) {
		hubOK(t, kc, "workspace", "create", "payments")
		out := hubOK(t, kc, "workspace", "list")
		if h := tableHeader(out); h != "NAME NAMESPACES DESCRIPTION AGE" || !strings.Contains(out, "payments") {
			t.Errorf("workspace list:\n%s", out)
		}
		hubOK(t, kc, "workspace", "delete", "payments")
		hubFails(t, kc, "the default workspace always exists", "workspace", "delete", "default")
	})

	t.Run("json and yaml are kubectl objects", func(t *testing.T) {
		var list struct {
			Kind  string
			Items []struct {
				APIVersion string
				Kind       string
			}
		}
		out := hubOK(t, kc, "clustergroup", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("clustergroup list -o json: %v\n%s", err, out)
		}
		if list.Kind != "List" || len(list.Items) == 0 || list.Items[0].APIVersion != "flotilla.dev/v1alpha1" || list.Items[0].Kind != "ClusterGroup" {
			t.Errorf("clustergroup list -o json:\n%s", out)
		}

		// What the CLI prints, kubectl applies.
		file := filepath.Join(t.TempDir(), "workspaces.yaml")
		os.WriteFile(file, []byte(hubOK(t, kc, "workspace", "list", "-o", "yaml")), 0o600)
		if out, err := exec.Command("kubectl", "--kubeconfig", kc, "apply", "--server-side", "-f", file).CombinedOutput(); err != nil {
			t.Errorf("kubectl apply of workspace list -o yaml: %v\n%s", err, out)
		}
	})

	t.Run("cluster list and get", func(t *testing.T) {
		out := hubOK(t, kc, "cluster", "list")
		if h := tableHeader(out); h != "NAME GROUP HEALTH VERSION NODES AGE" {
			t.Errorf("cluster list header = %q", h)
		}
		hubOK(t, kc, "clustergroup", "create", "edge")
		cluster := filepath.Join(t.TempDir(), "cluster.yaml")
		os.WriteFile(cluster, []byte("apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: edge-1}\nspec: {group: edge}\n"), 0o600)
		if out, err := exec.Command("kubectl", "--kubeconfig", kc, "create", "-f", cluster).CombinedOutput(); err != nil {
			t.Fatalf("kubectl create cluster: %v\n%s", err, out)
		}
		out = hubOK(t, kc, "cluster", "list")
		row := strings.Fields(strings.Split(out, "\n")[1])
		if len(row) != 6 || row[0] != "edge-1" || row[1] != "edge" || row[2] != "Unknown" {
			t.Errorf("cluster list:\n%s", out)
		}
		var c struct{ APIVersion, Kind string }
		if err := json.Unmarshal([]byte(hubOK(t, kc, "cluster", "get", "edge-1", "-o", "json")), &c); err != nil || c.Kind != "Cluster" {
			t.Errorf("cluster get -o json: kind %q, %v", c.Kind, err)
		}
		hubFails(t, kc, `cluster "nope" not found; see 'flotilla cluster list'`, "cluster", "get", "nope")
		hubFails(t, kc, `cluster group "edge" still has 1 cluster: edge-1; move or detach them first`, "clustergroup", "delete", "edge")
	})

	t.Run("policy create list get insights delete", func(t *testing.T) {
		hubOK(t, kc, "policy", "create", "no-latest", "--type", "image-registry", "--org", "--block-latest", "--allow-registry", "registry.example.com")
		hubOK(t, kc, "policy", "create", "no-root", "--type", "security", "--cluster-group", "default", "--disallow", "privileged", "--disallow", "run-as-root", "--mode", "audit")
		out := hubOK(t, kc, "policy", "list")
		if h := tableHeader(out); h != "NAME TYPE SCOPE MODE CLUSTERS NONCOMPLIANT VIOLATIONS AGE" || !strings.Contains(out, "no-root") {
			t.Errorf("policy list:\n%s", out)
		}
		out = hubOK(t, kc, "policy", "get", "no-root")
		for _, want := range []string{"Type:          security", "Scope:         cluster-group/default", "Mode:          audit", "Clusters:      0"} {
			if !strings.Contains(out, want) {
				t.Errorf("policy get lacks %q:\n%s", want, out)
			}
		}
		var p struct{ Kind string }
		if err := json.Unmarshal([]byte(hubOK(t, kc, "policy", "get", "no-root", "-o", "json")), &p); err != nil || p.Kind != "Policy" {
			t.Errorf("policy get -o json: %q %v", p.Kind, err)
		}
		if out := hubOK(t, kc, "policy", "insights"); tableHeader(out) != "CLUSTER POLICY TYPE KIND NAMESPACE OBJECT MESSAGE" {
			t.Errorf("policy insights:\n%s", out)
		}
		hubFails(t, kc, `"nope" not found`, "policy", "insights", "--cluster", "nope")
		hubFails(t, kc, `unknown policy type "bogus"`, "policy", "insights", "--type", "bogus")
		hubFails(t, kc, "compil", "policy", "create", "bad-cel", "--type", "custom", "--org", "--expression", "object.spec.replicas <", "--match-kind", "apps/Deployment")
		hubFails(t, kc, "unknown --disallow", "policy", "create", "bad-rule", "--type", "security", "--org", "--disallow", "everything")
		hubOK(t, kc, "policy", "delete", "no-latest")
		hubOK(t, kc, "policy", "delete", "no-root")
	})

	t.Run("--hub-kubeconfig wins over the environment", func(t *testing.T) {
		hubOK(t, filepath.Join(t.TempDir(), "absent"), "clustergroup", "list", "--hub-kubeconfig", kc)
	})
}

// Bad hub kubeconfigs give one line saying what to do, promptly.
func TestFleetCLIBadHubKubeconfig(t *testing.T) {
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.kubeconfig")
	os.WriteFile(corrupt, []byte("clusters: {this is: [not a kubeconfig"), 0o600)
	// A hub that is not running: nothing listens on port 1.
	dead := filepath.Join(tmp, "dead.kubeconfig")
	os.WriteFile(dead, []byte(`apiVersion: v1
kind: Config
clusters: [{name: hub, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: hub, user: {token: x}}]
contexts: [{name: hub, context: {cluster: hub, user: hub}}]
current-context: hub
`), 0o600)

	cases := []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"default absent", "", []string{"cluster", "list"}, []string{".flotilla/hub/admin.kubeconfig does not exist", "flotilla up", "--hub-kubeconfig"}},
		{"env absent", filepath.Join(tmp, "absent"), []string{"clustergroup", "list"}, []string{filepath.Join(tmp, "absent") + " does not exist", "--hub-kubeconfig"}},
		{"corrupt", "", []string{"workspace", "list", "--hub-kubeconfig", corrupt}, []string{"not valid", "--hub-kubeconfig"}},
		{"hub down", "", []string{"clustergroup", "create", "x", "--hub-kubeconfig", dead}, []string{"cannot reach the hub at https://127.0.0.1:1", "is it running?"}},
		{"bad output", "", []string{"cluster", "list", "-o", "wide"}, []string{`unknown output format "wide"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			msg := hubFails(t, tc.env, tc.want[0], tc.args...)
			for _, w := range tc.want[1:] {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
