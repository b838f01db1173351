package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/registration"
	"flotilla.dev/flotilla/internal/testenv"
)

// A hub on a host cluster that cannot register agents refuses to start and
// says what to change: a host whose apiserver does not authenticate
// bootstrap tokens, a kubeconfig that gives agents no CA. An agent sent to
// such a host reports a 401 or an unverifiable certificate as what it is.
func TestHostCheck(t *testing.T) {
	dir := t.TempDir()
	host := testenv.NewCluster(filepath.Join(dir, "host"), "host", 1)
	host.Args = append(host.Args, "--no-bootstrap-token-auth")
	if err := host.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Stop)

	raw, err := clientcmd.LoadFromFile(host.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var server string
	var ca []byte
	for _, c := range raw.Clusters {
		server, ca = c.Server, c.CertificateAuthorityData
	}
	// The same credential, without the CA: verification skipped.
	insecure := raw.DeepCopy()
	for _, c := range insecure.Clusters {
		c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
	}
	insecurePath := filepath.Join(dir, "insecure.kubeconfig")
	if err := clientcmd.WriteToFile(*insecure, insecurePath); err != nil {
		t.Fatal(err)
	}

	t.Run("no bootstrap-token authentication", func(t *testing.T) {
		msg := hubRefuses(t, host.Kubeconfig)
		for _, w := range []string{"does not accept bootstrap tokens", "401", "--enable-bootstrap-token-auth=true", "without --kubeconfig"} {
			if !strings.Contains(msg, w) {
				t.Errorf("message %q does not mention %q", msg, w)
			}
		}
		// The check's token is gone.
		secrets, err := host.Clientset.CoreV1().Secrets(metav1.NamespaceSystem).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets.Items {
			if strings.HasPrefix(s.Name, "bootstrap-token-") {
				t.Errorf("the check left its token %s behind", s.Name)
			}
		}
	})

	t.Run("no CA for agents", func(t *testing.T) {
		msg := hubRefuses(t, insecurePath)
		for _, w := range []string{"could not verify the host cluster's certificate", insecurePath, "kube-public/cluster-info", "certificate-authority-data"} {
			if !strings.Contains(msg, w) {
				t.Errorf("message %q does not mention %q", msg, w)
			}
		}
	})

	t.Run("CA published in cluster-info", func(t *testing.T) {
		info := clientcmdapi.NewConfig()
		info.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
		data, err := clientcmd.Write(*info)
		if err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespacePublic, Name: "cluster-info"}, Data: map[string]string{"kubeconfig": string(data)}}
		if _, err := host.Clientset.CoreV1().ConfigMaps(metav1.NamespacePublic).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer host.Clientset.CoreV1().ConfigMaps(metav1.NamespacePublic).Delete(context.Background(), "cluster-info", metav1.DeleteOptions{})
		// Past the CA check, to the next.
		if msg := hubRefuses(t, insecurePath); !strings.Contains(msg, "does not accept bootstrap tokens") {
			t.Errorf("with the CA in cluster-info: %q; want the CA accepted and the bootstrap-token check to refuse", msg)
		}
	})

	// An agent whose bootstrap kubeconfig names this host.
	agentSays := func(t *testing.T, ca []byte) string {
		t.Helper()
		boot, err := registration.BootstrapKubeconfig(server, ca, "lost", "uid-1", registration.Token{ID: "abcdef", Secret: "0123456789abcdef"})
		if err != nil {
			t.Fatal(err)
		}
		bootPath := filepath.Join(t.TempDir(), "boot.kubeconfig")
		os.WriteFile(bootPath, boot, 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, flotilla(t), "agent", "--cluster-kubeconfig", host.Kubeconfig, "--bootstrap-kubeconfig", bootPath, "--data-dir", t.TempDir())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || ctx.Err() != nil {
			t.Fatalf("the agent: %v (%s); want it to exit with the reason", err, stderr.String())
		}
		t.Logf("the agent: %s", stderr.String())
		return strings.TrimSpace(stderr.String())
	}
	t.Run("agent: 401", func(t *testing.T) {
		msg := agentSays(t, ca)
		if !strings.Contains(msg, "refused the bootstrap credential (401)") || !strings.Contains(msg, "does not accept bootstrap tokens") {
			t.Errorf("agent said %q; want the 401 and what it may mean", msg)
		}
	})
	t.Run("agent: unknown CA", func(t *testing.T) {
		other, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "other-ca")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		msg := agentSays(t, other.CertPEM())
		if !strings.Contains(msg, "cannot verify the hub's certificate") || !strings.Contains(msg, "bootstrap kubeconfig's CA does not match") {
			t.Errorf("agent said %q; want that it cannot verify the hub's certificate", msg)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("the agent took %s to give up on a certificate it cannot verify", d)
		}
	})
}

// hubRefuses runs a hub on the host kubeconfig names and returns the one
// line it fails with.
func hubRefuses(t *testing.T, kubeconfig string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, flotilla(t), "hub", "--data-dir", t.TempDir(), "--kubeconfig", kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || ctx.Err() != nil {
		t.Fatalf("hub on the host: %v (%s); want it to refuse to start", err, stderr.String())
	}
	msg := strings.TrimSpace(stderr.String())
	t.Logf("the hub: %s", msg)
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "flotilla: ") {
		t.Errorf("want one line starting 'flotilla: ', got:\n%s", msg)
	}
	return msg
}
