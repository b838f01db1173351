package controller

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// csrRequest is what the review of an agent's CSR looks at.
type csrRequest struct {
	// Cluster is taken from the requested common name.
	Cluster string
	// Orgs are the requested organizations (groups).
	Orgs []string
	// Usages requested.
	Usages []certificatesv1.KeyUsage
	// Requestor is the user that created the CSR.
	Requestor string
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

// verdict of a review: approve, deny with a reason, or not ours to decide.
type verdict struct {
	Approve, Deny bool
	Reason        string
	Message       string
}

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
	return csrRequest{
		Cluster:   strings.TrimPrefix(req.Subject.CommonName, fv1.AgentUserPrefix),
		Orgs:      req.Subject.Organization,
		Usages:    csr.Spec.Usages,
		Requestor: csr.Spec.Username,
	}, true
}

// bootstrapTokenID returns the token ID of a bootstrap user, if it is one.
func bootstrapTokenID(user string) (string, bool) {
	return strings.CutPrefix(user, "system:bootstrap:")
}

// reviewAgentCSR decides on an agent's CSR. An agent may obtain the identity
// of cluster C either with an unused bootstrap token issued for C while C is
// attached, or, to rotate, as the identity of C itself.
func reviewAgentCSR(r csrRequest, tok tokenState, clusterExists bool) verdict {
	deny := func(reason, format string, args ...any) verdict {
		return verdict{Deny: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if !slices.Equal(r.Orgs, []string{fv1.AgentGroup}) {
		return deny("BadSubject", "an agent certificate must have exactly the organization %q", fv1.AgentGroup)
	}
	for _, u := range r.Usages {
		if u != certificatesv1.UsageClientAuth && u != certificatesv1.UsageDigitalSignature && u != certificatesv1.UsageKeyEncipherment {
			return deny("BadUsage", "usage %q is not allowed for an agent certificate", u)
		}
	}
	if !clusterExists {
		return deny("UnknownCluster", "cluster %q is not attached to this hub", r.Cluster)
	}
	if r.Requestor == fv1.AgentUser(r.Cluster) {
		return verdict{Approve: true, Reason: "AgentRotation", Message: "the agent renews its own identity"}
	}
	if _, ok := bootstrapTokenID(r.Requestor); !ok {
		return verdict{} // someone else's request: leave it to people
	}
	switch {
	case !tok.Found:
		return deny("BootstrapUnknown", "the bootstrap credential is not one this hub issued")
	case tok.Cluster != r.Cluster:
		return deny("BootstrapMismatch", "the bootstrap credential was issued for cluster %q, not %q", tok.Cluster, r.Cluster)
	case tok.Used && !tok.UsedByThis:
		return deny("BootstrapReused", "the bootstrap credential for cluster %q was already used; each may register one agent (issue a new one by detaching and attaching again)", r.Cluster)
	}
	return verdict{Approve: true, Reason: "AgentRegistered", Message: "registered with a valid bootstrap credential"}
}
