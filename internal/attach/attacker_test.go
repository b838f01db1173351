package attach_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// stolen is what an attacker copies from an agent's data dir: its hub
// kubeconfig (key and certificate).
type stolen struct {
	cfg  *rest.Config
	cert *x509.Certificate
}

// steal copies the identity an agent holds in dir.
func steal(t *testing.T, dir string) stolen {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "hub.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "stolen.kubeconfig")
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeconfig.Load(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	return stolen{cfg: cfg, cert: parseCertPEM(t, cfg.CertData)}
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no certificate in PEM data")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (s stolen) client(t *testing.T) client.Client {
	t.Helper()
	cl, err := client.New(s.cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// transport reaches the heartbeat endpoint with the stolen certificate.
func (s stolen) transport(t *testing.T, pool *x509.CertPool) *http.Transport {
	t.Helper()
	cert, err := tls.X509KeyPair(s.cfg.CertData, s.cfg.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	rt := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(rt.CloseIdleConnections)
	return rt
}

// askCertificate creates, as cl's user, a request for the identity of
// cluster bound to attach ("" for none), for lifetime, with a new key. It
// returns the request's name and the key.
func askCertificate(t *testing.T, cl client.Client, cluster, attach string, lifetime time.Duration) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	orgs := []string{fv1.AgentGroup}
	if attach != "" {
		orgs = append(orgs, fv1.AttachGroup(attach))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fv1.AgentUser(cluster), Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	seconds := int32(lifetime / time.Second)
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: fmt.Sprintf("%sattacker-", fv1.AgentCSRPrefix(cluster))},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			ExpirationSeconds: &seconds,
		},
	}
	if err := cl.Create(context.Background(), csr); err != nil {
		t.Fatalf("creating a certificate request for %s: %v", cluster, err)
	}
	return csr.Name, key
}

// csrOutcome waits until request name is denied (returning its reason and
// message) or issued (returning the certificate).
func csrOutcome(t *testing.T, name string) (reason, message string, cert *x509.Certificate) {
	t.Helper()
	waitFor(t, 20*time.Second, "certificate request "+name+" decided and, if approved, issued", func(ctx context.Context) (bool, error) {
		var csr certificatesv1.CertificateSigningRequest
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &csr); err != nil {
			return false, err
		}
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
				reason, message = c.Reason, c.Message
				return true, nil
			}
		}
		if len(csr.Status.Certificate) > 0 {
			cert = parseCertPEM(t, csr.Status.Certificate)
			return true, nil
		}
		return false, nil
	})
	return reason, message, cert
}

// withCert is s's identity with cert and key instead.
func (s stolen) withCert(t *testing.T, cert *x509.Certificate, key *ecdsa.PrivateKey) stolen {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(s.cfg)
	cfg.CertData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cfg.CertFile, cfg.KeyFile = "", ""
	return stolen{cfg: cfg, cert: cert}
}
