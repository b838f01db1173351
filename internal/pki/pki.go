// Package pki creates and loads the certificates a control plane needs: one CA
// per control plane that signs serving and client certificates, and the
// service-account signing key. Files are kept as PEM in a directory so a
// restarted control plane keeps its identity and issued kubeconfigs stay valid.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Validity of leaf certificates. The CA lives ten years; leaves one year and
// are reissued at start when less than a month is left.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// CA is a certificate authority held in memory.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertFile and KeyFile are where the CA is stored.
	CertFile, KeyFile string
}

// Pair names the files of an issued certificate and key.
type Pair struct {
	CertFile, KeyFile string
}

// LoadOrCreateCA reads dir/name.crt and dir/name.key, creating them first if absent.
func LoadOrCreateCA(dir, name, commonName string) (*CA, error) {
	ca := &CA{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if fileExists(ca.CertFile) && fileExists(ca.KeyFile) {
		certs, err := certutil.CertsFromFile(ca.CertFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA %s: %w", ca.CertFile, err)
		}
		key, err := keyutil.PrivateKeyFromFile(ca.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA key %s: %w", ca.KeyFile, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("CA key %s cannot sign", ca.KeyFile)
		}
		ca.Cert, ca.Key = certs[0], signer
		return ca, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	ca.Cert, _ = x509.ParseCertificate(der)
	ca.Key = key
	if err := writePair(ca.CertFile, ca.KeyFile, der, key); err != nil {
		return nil, err
	}
	return ca, nil
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: ca.Cert.Raw})
}

// Serving returns a serving certificate for the given hosts (IPs or DNS
// names) stored as dir/name.{crt,key}, issuing it when absent, expiring, or
// missing one of the hosts.
func (ca *CA) Serving(dir, name string, hosts []string) (Pair, error) {
	return ca.issue(dir, name, pkix.Name{CommonName: name}, hosts, x509.ExtKeyUsageServerAuth)
}

// Client returns a client certificate for user and groups stored as dir/name.{crt,key}.
func (ca *CA) Client(dir, name, user string, groups ...string) (Pair, error) {
	return ca.issue(dir, name, pkix.Name{CommonName: user, Organization: groups}, nil, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(dir, name string, subject pkix.Name, hosts []string, usage x509.ExtKeyUsage) (Pair, error) {
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if current(p, ca, hosts) {
		return p, nil
	}
	key, err := newKey()
	if err != nil {
		return p, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return p, err
	}
	return p, writePair(p.CertFile, p.KeyFile, der, key)
}

// ServiceAccountKey returns dir/sa.key and dir/sa.pub, creating them when absent.
func ServiceAccountKey(dir string) (Pair, error) {
	p := Pair{KeyFile: filepath.Join(dir, "sa.key"), CertFile: filepath.Join(dir, "sa.pub")}
	if fileExists(p.KeyFile) && fileExists(p.CertFile) {
		return p, nil
	}
	key, err := newKey()
	if err != nil {
		return p, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return p, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return p, err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if err := os.WriteFile(p.KeyFile, keyPEM, 0o600); err != nil {
		return p, err
	}
	return p, os.WriteFile(p.CertFile, pubPEM, 0o644)
}

// current reports whether the pair exists, was signed by ca, covers hosts and
// is not close to expiry.
func current(p Pair, ca *CA, hosts []string) bool {
	if !fileExists(p.KeyFile) {
		return false
	}
	certs, err := certutil.CertsFromFile(p.CertFile)
	if err != nil || len(certs) == 0 {
		return false
	}
	c := certs[0]
	if time.Until(c.NotAfter) < renewBefore || c.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writePair(certFile, keyFile string, der []byte, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: der}), 0o644)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
