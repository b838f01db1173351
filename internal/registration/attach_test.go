package registration

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"flotilla.dev/flotilla/internal/kubeconfig"
)

// The attach UID survives the kubeconfig's round trip through YAML, as the
// agent reads it; a kubeconfig of an earlier version has none.
func TestBootstrapKubeconfigCarriesAttach(t *testing.T) {
	data, err := BootstrapKubeconfig("https://hub:6443", []byte("ca"), "prod", "0b6d-uid", Token{ID: "abcdef", Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := kubeconfig.AttachOf(raw.Contexts[raw.CurrentContext]); got != "0b6d-uid" {
		t.Fatalf("attach %q, want 0b6d-uid; kubeconfig:\n%s", got, data)
	}
	delete(raw.Contexts[raw.CurrentContext].Extensions, kubeconfig.ExtensionAttach)
	if got := kubeconfig.AttachOf(raw.Contexts[raw.CurrentContext]); got != "" {
		t.Fatalf("attach %q from a kubeconfig without one", got)
	}
}
