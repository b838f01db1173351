package attach_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
)

// A policy whose scope does not exist is accepted with a warning from the
// hub's API, the same for every scope kind, which the CLI and kubectl print.
func TestPolicyUnknownScopeWarns(t *testing.T) {
	// A cluster that exists (no agent needed) for the namespace scope.
	attachCluster(t, "sw-known", attach.Options{})
	deleteAfter := func(name string) {
		t.Cleanup(func() {
			env.Hub.Client.Delete(context.Background(), &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}})
		})
	}
	const tail = "(yet); the policy applies to nothing until it does"
	cases := []struct {
		name string
		args []string
		want string // empty: no warning
	}{
		{"sw-cluster", []string{"--type", "quota", "--preset", "small", "--cluster", "nosuch"}, `cluster "nosuch" does not exist ` + tail},
		{"sw-group", []string{"--type", "quota", "--preset", "small", "--cluster-group", "nosuch-group"}, `cluster group "nosuch-group" does not exist ` + tail},
		{"sw-workspace", []string{"--type", "image-registry", "--block-latest", "--workspace", "nosuch-ws"}, `workspace "nosuch-ws" does not exist ` + tail},
		{"sw-ns-cluster", []string{"--type", "access", "--role", "view", "--user", "alice", "--namespace", "nosuch/web"}, `cluster "nosuch" of namespace nosuch/web does not exist ` + tail},
		{"sw-ns", []string{"--type", "access", "--role", "view", "--user", "alice", "--namespace", "sw-known/nosuch-ns"}, `namespace "nosuch-ns" does not exist in cluster "sw-known" ` + tail},
		{"sw-known-cluster", []string{"--type", "quota", "--preset", "small", "--cluster", "sw-known"}, ""},
		{"sw-known-group", []string{"--type", "quota", "--preset", "small", "--cluster-group", fv1.DefaultName}, ""},
		{"sw-known-ws", []string{"--type", "image-registry", "--block-latest", "--workspace", fv1.DefaultName}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			deleteAfter(tc.name)
			out, errOut, err := flotilla(t, append([]string{"policy", "create", tc.name}, tc.args...)...)
			if err != nil || !strings.Contains(out, "policy "+tc.name+" created") {
				t.Fatalf("policy create: %v\n%s%s", err, out, errOut)
			}
			switch {
			case tc.want == "" && strings.Contains(errOut, "Warning"):
				t.Errorf("warning for a scope that exists: %s", errOut)
			case tc.want != "" && !strings.Contains(errOut, "Warning: policy scope: "+tc.want):
				t.Errorf("stderr = %q, want the warning %q", errOut, tc.want)
			}
		})
	}

	t.Run("kubectl", func(t *testing.T) {
		deleteAfter("sw-kubectl")
		manifest := `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Policy","metadata":{"name":"sw-kubectl"},
"spec":{"type":"quota","scope":{"clusterGroup":"nosuch-group"},"quota":{"preset":"small"}}}`
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.Hub.Kubeconfig, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `Warning: policy scope: cluster group "nosuch-group" does not exist `+tail) {
			t.Errorf("kubectl apply: %v\n%s", err, out)
		}
	})
}
