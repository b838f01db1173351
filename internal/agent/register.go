package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// errTokenRejected is the hub refusing the bootstrap credential itself.
var errTokenRejected = errors.New("the hub refused the bootstrap credential (401)")

// explainHubError says what err, from the hub's apiserver while an agent
// registers (with a bootstrap token) or renews its certificate, means when
// retrying cannot fix it: the hub's certificate cannot be verified, or the
// hub refuses the credential. Other errors are returned as they are.
func explainHubError(err error, cfg *rest.Config) error {
	bootstrap := cfg.BearerToken != "" || cfg.BearerTokenFile != ""
	caFrom := "the CA of the agent's saved identity"
	if bootstrap {
		caFrom = "the bootstrap kubeconfig's CA"
	}
	if e := heartbeat.ExplainTLS(err, caFrom); e != err {
		return errPermanent{e}
	}
	if !apierrors.IsUnauthorized(err) {
		return err
	}
	if bootstrap {
		// The apiserver answers 401 alike for a token it does not know,
		// one that expired and every token when bootstrap-token
		// authentication is off: the hub's own refusals of a known token
		// (used already, another cluster's) come as a denied request.
		return errPermanent{fmt.Errorf("%w: it has expired, was used, or the hub does not accept bootstrap tokens (a hub on a host cluster needs the host's kube-apiserver to run with --enable-bootstrap-token-auth); attach the cluster again for a new one", errTokenRejected)}
	}
	return errPermanent{fmt.Errorf("the hub refused the agent's certificate (401): it expired, or it was not issued by this hub; remove the agent's saved identity and register it with a new bootstrap credential (attach the cluster again)")}
}

// errPermanent marks failures a retry cannot fix.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// identity is the agent's registered hub credential.
type identity struct {
	Cluster string
	// Attach is the attach (Cluster UID) the certificate is bound to; ""
	// for a name-only certificate of an earlier version.
	Attach   string
	Server   string
	CAData   []byte
	CertPEM  []byte
	KeyPEM   []byte
	NotAfter time.Time
	Issued   time.Time
	// Others are the apiservers of the other hubs on the same storage,
	// as hub info listed them: an agent started while Server is down
	// reaches the hub through them.
	Others []string
}

func (id *identity) restConfig() *rest.Config {
	return &rest.Config{
		Host:            id.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: id.CAData, CertData: id.CertPEM, KeyData: id.KeyPEM},
		Timeout:         15 * time.Second,
	}
}

// encode writes the identity as a kubeconfig.
func (id *identity) encode() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["flotilla-hub"] = &clientcmdapi.Cluster{Server: id.Server, CertificateAuthorityData: id.CAData}
	cfg.AuthInfos[fv1.AgentUser(id.Cluster)] = &clientcmdapi.AuthInfo{ClientCertificateData: id.CertPEM, ClientKeyData: id.KeyPEM}
	for i, server := range id.Others {
		cfg.Clusters[fmt.Sprintf("flotilla-hub-%d", i+2)] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: id.CAData}
	}
	cfg.Contexts[id.Cluster] = &clientcmdapi.Context{Cluster: "flotilla-hub", AuthInfo: fv1.AgentUser(id.Cluster)}
	cfg.CurrentContext = id.Cluster
	return clientcmd.Write(*cfg)
}

// decodeIdentity reads what encode wrote; ok is false if it is not a usable
// identity (unreadable, or its certificate expired).
func decodeIdentity(data []byte) (*identity, bool) {
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, false
	}
	ctx := raw.Contexts[raw.CurrentContext]
	if ctx == nil || raw.Clusters[ctx.Cluster] == nil || raw.AuthInfos[ctx.AuthInfo] == nil {
		return nil, false
	}
	auth := raw.AuthInfos[ctx.AuthInfo]
	cert, err := parseCert(auth.ClientCertificateData)
	if err != nil || time.Now().After(cert.NotAfter) {
		return nil, false
	}
	var others []string
	for _, name := range slices.Sorted(maps.Keys(raw.Clusters)) {
		if name != ctx.Cluster {
			others = append(others, raw.Clusters[name].Server)
		}
	}
	return &identity{
		Cluster: raw.CurrentContext, Server: raw.Clusters[ctx.Cluster].Server, CAData: raw.Clusters[ctx.Cluster].CertificateAuthorityData,
		CertPEM: auth.ClientCertificateData, KeyPEM: auth.ClientKeyData, NotAfter: cert.NotAfter, Issued: cert.NotBefore,
		Attach: fv1.AttachOf(cert.Subject.Organization), Others: others,
	}, true
}

// bootstrapTarget reads the bootstrap kubeconfig: the hub, its CA, the
// credential, (as the context name) the cluster to register, and the attach
// its certificate is to be bound to ("" from an earlier version's attach).
func bootstrapTarget(path string) (*rest.Config, string, string, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, "", "", errPermanent{fmt.Errorf("bootstrap kubeconfig %s cannot be used: %v", path, err)}
	}
	cluster := raw.CurrentContext
	if cluster == "" || raw.Contexts[cluster] == nil {
		return nil, "", "", errPermanent{fmt.Errorf("bootstrap kubeconfig %s names no cluster (its current context must be the cluster name)", path)}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, nil).ClientConfig()
	if err != nil {
		return nil, "", "", errPermanent{fmt.Errorf("bootstrap kubeconfig %s is not valid: %v", path, err)}
	}
	cfg.Timeout = 15 * time.Second
	return cfg, cluster, kubeconfig.AttachOf(raw.Contexts[cluster]), nil
}

// requestIdentity obtains a signed certificate for cluster, bound to attach,
// by creating a CSR with cfg's credential (a bootstrap token, or the current
// identity when rotating) and waiting for the hub to approve and sign it.
func requestIdentity(ctx context.Context, cfg *rest.Config, cluster, attach string, key crypto.Signer, ttl time.Duration) (*identity, error) {
	csrs, err := csrClient(cfg)
	if err != nil {
		return nil, err
	}
	orgs := []string{fv1.AgentGroup}
	if attach != "" {
		orgs = append(orgs, fv1.AttachGroup(attach))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: fv1.AgentUser(cluster), Organization: orgs},
	}, key)
	if err != nil {
		return nil, err
	}
	// Named after the key: a create whose reply was lost (a timeout on a
	// busy hub) that is tried again finds its request and waits for it,
	// rather than making a second one that the used credential would fail.
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	name := fmt.Sprintf("%s%x", fv1.AgentCSRPrefix(cluster), sum[:5])
	seconds := int32(ttl.Seconds())
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			ExpirationSeconds: &seconds,
		},
	})
	if apierrors.IsAlreadyExists(err) {
		csr, err = &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
	}
	if err != nil {
		if e := explainHubError(err, cfg); e != err {
			return nil, e
		}
		return nil, fmt.Errorf("submitting certificate request to the hub: %w", err)
	}
	klog.InfoS("submitted certificate request", "csr", csr.Name, "cluster", cluster)
	// Many agents register at once when a fleet is attached: the wait backs
	// off, and a read at any version may be answered from a cache (a stale
	// answer only means one more look).
	for wait := 100 * time.Millisecond; ; wait = min(wait*3/2, time.Second) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{ResourceVersion: "0"})
		if err != nil {
			if e := explainHubError(err, cfg); e != err {
				return nil, e
			}
			if apierrors.IsForbidden(err) {
				return nil, errPermanent{fmt.Errorf("the hub refused access while registering: %v", err)}
			}
			continue
		}
		for _, c := range got.Status.Conditions {
			if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
				// The hub's reasons name a used or foreign bootstrap
				// credential (BootstrapReused, BootstrapMismatch).
				return nil, errPermanent{fmt.Errorf("the hub refused registration (%s): %s", c.Reason, c.Message)}
			}
		}
		if len(got.Status.Certificate) == 0 {
			continue
		}
		cert, err := parseCert(got.Status.Certificate)
		if err != nil {
			return nil, err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
		if err != nil {
			return nil, err
		}
		return &identity{
			Cluster: cluster, Attach: fv1.AttachOf(cert.Subject.Organization), Server: cfg.Host, CAData: caData(cfg),
			CertPEM: got.Status.Certificate, KeyPEM: keyPEM, NotAfter: cert.NotAfter, Issued: cert.NotBefore,
		}, nil
	}
}

func caData(cfg *rest.Config) []byte {
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	b, _ := os.ReadFile(cfg.CAFile)
	return b
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no certificate in PEM data")
	}
	return x509.ParseCertificate(block.Bytes)
}
