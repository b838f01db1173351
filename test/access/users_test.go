package access

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// user issues name a hub kubeconfig with `flotilla user kubeconfig`, and
// returns a kubeconfig for east and west through the hub made from it with
// `flotilla kubeconfig`.
func user(t *testing.T, name string, groups ...string) string {
	t.Helper()
	hubKC := userHub(t, name, groups...)
	clusters := filepath.Join(filepath.Dir(hubKC), "clusters.kubeconfig")
	write(t, clusters, flotilla(t, "kubeconfig", "east", "west", "--hub-kubeconfig", hubKC))
	return clusters
}

// userHub issues name a hub kubeconfig with `flotilla user kubeconfig`.
func userHub(t *testing.T, name string, groups ...string) string {
	t.Helper()
	args := []string{"user", "kubeconfig", name, "--ttl", "1h", "--hub-kubeconfig", env.Hub.Kubeconfig}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	hubKC := filepath.Join(t.TempDir(), "hub.kubeconfig")
	write(t, hubKC, flotilla(t, args...))
	return hubKC
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// restConfig is the client config of context cluster in kubeconfig.
func restConfig(t *testing.T, kubeconfig, cluster string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: cluster}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// accessPolicy grants subjects role through a policy set on scope, and
// removes it when the test ends.
func accessPolicy(t *testing.T, name string, scope fv1.PolicyScope, role string, subjects ...fv1.Subject) *fv1.Policy {
	t.Helper()
	p := &fv1.Policy{ObjectMeta: objectMeta(name), Spec: fv1.PolicySpec{Type: fv1.PolicyAccess, Scope: scope, Access: &fv1.AccessSpec{Role: role, Subjects: subjects}}}
	if err := env.Hub.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Hub.Client.Delete(context.Background(), p) })
	return p
}

func userSubject(name string) fv1.Subject  { return fv1.Subject{Kind: "User", Name: name} }
func groupSubject(name string) fv1.Subject { return fv1.Subject{Kind: "Group", Name: name} }
