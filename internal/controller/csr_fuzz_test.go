package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// FuzzAgentCSR reads certificate requests as the hub does from whoever may
// create one (a bootstrap token, an agent identity), and reviews them. It
// must not panic, and must approve only a request for an agent subject of
// the cluster the review was given, bound to its attach, with agent usages.
func FuzzAgentCSR(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	request := func(cn string, orgs ...string) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
		if err != nil {
			f.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	good := request(fv1.AgentUser("a"), fv1.AgentGroup, fv1.AttachGroup("uid-1"))
	for _, seed := range []struct {
		req       []byte
		requestor string
		usage     string
		seconds   int32
	}{
		{good, "system:bootstrap:abcdef", string(certificatesv1.UsageClientAuth), 3600},
		{good, fv1.AgentUser("a"), string(certificatesv1.UsageDigitalSignature), 600},
		{good, fv1.AgentUser("b"), string(certificatesv1.UsageClientAuth), 3600},
		{request(fv1.AgentUser("a"), fv1.AgentGroup, "system:masters"), "system:bootstrap:abcdef", string(certificatesv1.UsageClientAuth), 3600},
		{request(fv1.AgentUserPrefix), "system:bootstrap:abcdef", string(certificatesv1.UsageServerAuth), -1},
		{request("alice"), "alice", "", 0},
		{good[:len(good)/2], "system:bootstrap:abcdef", "", 0},
		{[]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "", "", 0},
		{[]byte("not pem"), "", "", 0},
	} {
		f.Add(seed.req, seed.requestor, seed.usage, seed.seconds)
	}
	f.Fuzz(func(t *testing.T, req []byte, requestor, usage string, seconds int32) {
		csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: req, Username: requestor, Groups: []string{fv1.AgentGroup, fv1.AttachGroup("uid-1")},
			Usages: []certificatesv1.KeyUsage{certificatesv1.KeyUsage(usage)}, ExpirationSeconds: &seconds,
			Extra: map[string]certificatesv1.ExtraValue{credentialIDKey: {credentialIDPrefix + "cur"}},
		}}
		r, ok := parseAgentCSR(csr)
		if !ok {
			return
		}
		if !strings.HasPrefix(fv1.AgentUser(r.Cluster), fv1.AgentUserPrefix) {
			t.Fatalf("cluster %q read from a request", r.Cluster)
		}
		c := clusterState{Exists: true, UID: "uid-1", Current: "cur", MaxLifetime: 24 * time.Hour}
		v := reviewAgentCSR(r, tokenState{Found: true, Cluster: "a"}, c)
		if v.Approve && v.Deny {
			t.Fatalf("approved and denied: %+v", v)
		}
		if !v.Approve {
			return
		}
		switch {
		case r.Cluster != "a":
			t.Fatalf("approved a request for cluster %q with a token of cluster a (%+v)", r.Cluster, v)
		case !slices.Equal(r.Orgs, []string{fv1.AgentGroup, fv1.AttachGroup("uid-1")}):
			t.Fatalf("approved a request for organizations %q", r.Orgs)
		case usage != string(certificatesv1.UsageClientAuth) && usage != string(certificatesv1.UsageDigitalSignature) && usage != string(certificatesv1.UsageKeyEncipherment):
			t.Fatalf("approved a request for usage %q", usage)
		case r.Lifetime <= 0 || r.Lifetime > c.MaxLifetime:
			t.Fatalf("approved a lifetime of %s", r.Lifetime)
		}
	})
}
