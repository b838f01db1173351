package tracker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/pki"
)

// An agent opens its stream as soon as its certificate is issued, often
// before the hub has recorded it as the cluster's current. The request is
// then kept, and deleted once the record catches up, not left for the
// agent's next stream (after a hub restart, the whole fleet's at once).
func TestUsedRequestDeletedOnceItsCertificateIsRecorded(t *testing.T) {
	ctx := context.Background()
	const cluster = "csr-late"
	url, rt := identity(t, cluster)
	c := getCluster(t, cluster)

	// A request the hub leaves to people (bound to no attach, made by the
	// admin), approved by hand and signed by the controller manager: its
	// certificate is never recorded as the cluster's.
	name := issuedRequest(t, cluster)
	if cur := getCluster(t, cluster).Status.AgentCertificate; cur != nil {
		t.Fatalf("the hub recorded %+v; the test needs a cluster with none", cur)
	}

	// The agent presents a certificate newer than the request's.
	cert := agentCertificate(t, cluster, string(c.UID))
	rt.TLSClientConfig.Certificates = []tls.Certificate{cert}
	s := openRaw(t, url, rt)
	s.write(t, report(1))
	s.replies(t, 1, 10*time.Second)

	exists := func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &certificatesv1.CertificateSigningRequest{})
		return err == nil, client.IgnoreNotFound(err)
	}
	time.Sleep(2 * time.Second)
	if ok, err := exists(ctx); err != nil || !ok {
		t.Fatalf("the request was deleted before the hub recorded the certificate presented (%v)", err)
	}

	// The hub records the presented certificate as the cluster's current.
	before := getCluster(t, cluster)
	after := before.DeepCopy()
	sum := sha256.Sum256(cert.Leaf.Raw)
	after.Status.AgentCertificate = &fv1.AgentCertificate{SHA256: hex.EncodeToString(sum[:]), Issued: metav1.NewTime(cert.Leaf.NotBefore), NotAfter: metav1.NewTime(cert.Leaf.NotAfter)}
	if err := env.Hub.Client.Status().Patch(ctx, after, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	poll(t, 15*time.Second, "the used request deleted", func(ctx context.Context) (bool, error) {
		ok, err := exists(ctx)
		return !ok, err
	})
}

// issuedRequest makes, approves and waits for the certificate of a request
// for cluster's agent identity bound to no attach, and returns its name.
func issuedRequest(t *testing.T, cluster string) string {
	t.Helper()
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fv1.AgentUser(cluster), Organization: []string{fv1.AgentGroup}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	seconds := int32(3600)
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: fv1.AgentCSRPrefix(cluster) + "by-hand"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			ExpirationSeconds: &seconds,
		},
	}
	if err := env.Hub.Client.Create(ctx, csr); err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "ByHand", Message: "approved by the test",
	})
	if err := env.Hub.Client.SubResource("approval").Update(ctx, csr); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "the request's certificate", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(csr), csr)
		if apierrors.IsNotFound(err) {
			t.Fatal("the request was deleted before its certificate was presented")
		}
		return err == nil && len(csr.Status.Certificate) > 0, err
	})
	return csr.Name
}

// agentCertificate signs, with the hub's CA, an identity for cluster's
// current attach that is issued now.
func agentCertificate(t *testing.T, cluster, uid string) tls.Certificate {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.Hub.Dir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: fv1.AgentUser(cluster), Organization: []string{fv1.AgentGroup, fv1.AttachGroup(uid)}},
		NotBefore:    now, NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
