package controller

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// csrRequest is what the review of an agent's CSR looks at.
type csrRequest struct {
	// Cluster is taken from the requested common name.
	Cluster string
	// Orgs are the requested organizations (groups).
	Orgs []string
	// Attach is the attach UID the requested subject names, or "".
	Attach string
	// Usages requested.
	Usages []certificatesv1.KeyUsage
	// Lifetime asked for (spec.expirationSeconds); 0 when not asked.
	Lifetime time.Duration
	// Requestor is the user that created the CSR, RequestorGroups its
	// groups, and RequestorCert the SHA-256 (hex) of the client
	// certificate it authenticated with, if it did.
	Requestor       string
	RequestorGroups []string
	RequestorCert   string
}

// tokenState is what the hub knows of the bootstrap token a CSR came with.
type tokenState struct {
	Found   bool
	Cluster string
	Used    bool
	// UsedByThis: the token was spent on this very request, whose approval
	// is being written again (the first write failed, e.g. timed out).
	UsedByThis bool
}

// clusterState is what the hub knows of the cluster a CSR names.
type clusterState struct {
	// Exists: the Cluster exists and is not being detached.
	Exists bool
	// UID of the Cluster: its current attach.
	UID string
	// NameOnly: attached by an earlier version, whose certificates name no
	// attach (fv1.AnnotationNameOnlyIdentity).
	NameOnly bool
	// Current is the SHA-256 of the agent's current certificate, "" until
	// the hub has recorded one.
	Current string
	// Outstanding: an earlier request for the cluster is not yet decided,
	// or approved and not yet issued.
	Outstanding bool
	// MaxLifetime is the longest certificate the hub issues.
	MaxLifetime time.Duration
}

// verdict of a review: approve, deny with a reason, or not ours to decide.
type verdict struct {
	Approve, Deny bool
	Reason        string
	Message       string
}

// credentialIDPrefix begins the credential ID the apiserver gives a user
// authenticated by a client certificate (user extra
// authentication.kubernetes.io/credential-id), before the certificate's
// SHA-256; the CSR carries it in spec.extra.
const credentialIDPrefix = "X509SHA256="

// credentialIDKey is that extra's key.
const credentialIDKey = "authentication.kubernetes.io/credential-id"

// parseAgentCSR extracts the request, or reports that the CSR is not an agent's.
func parseAgentCSR(csr *certificatesv1.CertificateSigningRequest) (csrRequest, bool) {
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return csrRequest{}, false
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || !strings.HasPrefix(req.Subject.CommonName, fv1.AgentUserPrefix) {
		return csrRequest{}, false
	}
	r := csrRequest{
		Cluster:         strings.TrimPrefix(req.Subject.CommonName, fv1.AgentUserPrefix),
		Orgs:            req.Subject.Organization,
		Attach:          fv1.AttachOf(req.Subject.Organization),
		Usages:          csr.Spec.Usages,
		Requestor:       csr.Spec.Username,
		RequestorGroups: csr.Spec.Groups,
	}
	if s := csr.Spec.ExpirationSeconds; s != nil {
		r.Lifetime = time.Duration(*s) * time.Second
	}
	for _, id := range csr.Spec.Extra[credentialIDKey] {
		if sum, ok := strings.CutPrefix(id, credentialIDPrefix); ok {
			r.RequestorCert = sum
		}
	}
	return r, true
}

// bootstrapTokenID returns the token ID of a bootstrap user, if it is one.
func bootstrapTokenID(user string) (string, bool) {
	return strings.CutPrefix(user, "system:bootstrap:")
}

// reviewAgentCSR decides on an agent's CSR. An agent may obtain the identity
// of cluster C, bound to C's current attach, either with an unused bootstrap
// token issued for C while C is attached, or, to rotate, with C's current
// certificate of that same attach. The hub caps the lifetime, and a cluster
// has at most one request in flight.
func reviewAgentCSR(r csrRequest, tok tokenState, c clusterState) verdict {
	deny := func(reason, format string, args ...any) verdict {
		return verdict{Deny: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if !slices.Equal(r.Orgs, []string{fv1.AgentGroup}) && !slices.Equal(r.Orgs, []string{fv1.AgentGroup, fv1.AttachGroup(r.Attach)}) {
		return deny("BadSubject", "an agent certificate must have the organization %q and, after it, only %q", fv1.AgentGroup, fv1.AttachGroupPrefix+"UID")
	}
	for _, u := range r.Usages {
		if u != certificatesv1.UsageClientAuth && u != certificatesv1.UsageDigitalSignature && u != certificatesv1.UsageKeyEncipherment {
			return deny("BadUsage", "usage %q is not allowed for an agent certificate", u)
		}
	}
	if other, ok := strings.CutPrefix(r.Requestor, fv1.AgentUserPrefix); ok && other != r.Cluster {
		return deny("ForeignCluster", "the agent of cluster %q may not request the identity of cluster %q", other, r.Cluster)
	}
	rotation := r.Requestor == fv1.AgentUser(r.Cluster)
	if _, ok := bootstrapTokenID(r.Requestor); !ok && !rotation {
		return verdict{} // someone else's request: leave it to people
	}
	if !c.Exists {
		return deny("UnknownCluster", "cluster %q is not attached to this hub", r.Cluster)
	}
	switch {
	case r.Attach == "" && !c.NameOnly:
		return deny("AttachMissing", "the request names no attach of cluster %q: it comes from an agent or bootstrap credential of an earlier Flotilla version; update the agent, then detach the cluster and attach it again", r.Cluster)
	case r.Attach != "" && r.Attach != c.UID:
		return deny("StaleAttach", "the request is bound to attach %s of cluster %q, which was detached; attach the cluster again for a new bootstrap credential", r.Attach, r.Cluster)
	}
	if r.Lifetime <= 0 || r.Lifetime > c.MaxLifetime {
		asked := "no lifetime"
		if r.Lifetime > 0 {
			asked = r.Lifetime.String()
		}
		return deny("LifetimeTooLong", "the request asks for %s; this hub issues agent certificates for at most %s (hub --agent-certificate-lifetime): ask for that or less (agent --certificate-ttl)", asked, c.MaxLifetime)
	}
	if rotation {
		held := fv1.AttachOf(r.RequestorGroups)
		if held != c.UID && !(held == "" && c.NameOnly) {
			return deny("StaleIdentity", "the certificate making the request was issued for an earlier attach of cluster %q, which detaching revoked", r.Cluster)
		}
		if c.Current != "" && r.RequestorCert != c.Current {
			return deny("NotCurrentCertificate", "only the current certificate of cluster %q (sha256 %s) may renew it; the one making the request was superseded or is unknown", r.Cluster, c.Current)
		}
		if c.Outstanding {
			return deny("RequestOutstanding", "cluster %q already has a certificate request in flight; wait for it", r.Cluster)
		}
		return verdict{Approve: true, Reason: "AgentRotation", Message: "the agent renews its own identity"}
	}
	switch {
	case !tok.Found:
		return deny("BootstrapUnknown", "the bootstrap credential is not one this hub issued")
	case tok.Cluster != r.Cluster:
		return deny("BootstrapMismatch", "the bootstrap credential was issued for cluster %q, not %q", tok.Cluster, r.Cluster)
	case tok.Used && !tok.UsedByThis:
		return deny("BootstrapReused", "the bootstrap credential for cluster %q was already used; each may register one agent (issue a new one by detaching and attaching again)", r.Cluster)
	case c.Outstanding && !tok.UsedByThis:
		return deny("RequestOutstanding", "cluster %q already has a certificate request in flight; wait for it", r.Cluster)
	}
	return verdict{Approve: true, Reason: "AgentRegistered", Message: "registered with a valid bootstrap credential"}
}
