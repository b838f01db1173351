package heartbeat

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrHubCertificate is an agent's failure to verify the hub's serving
// certificate: retrying cannot fix it, so an agent reports it as it is
// instead of waiting for the hub to become reachable.
var ErrHubCertificate = errors.New("cannot verify the hub's certificate")

// ErrAgentCertificate is the hub's TLS refusal of the agent's client
// certificate during the handshake.
var ErrAgentCertificate = errors.New("the hub refused this agent's certificate")

// ExplainTLS returns err described for an agent when it is a TLS failure,
// and err itself otherwise. caFrom says where the agent's CA for the hub
// came from ("the bootstrap kubeconfig's CA", say), which is what is
// wrong when the hub's certificate cannot be verified.
func ExplainTLS(err error, caFrom string) error {
	if err == nil {
		return nil
	}
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var remote *net.OpError
	switch {
	case errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid):
		return fmt.Errorf("%w (%v): %s does not match the hub's serving certificate; give the agent a kubeconfig whose CA verifies the hub's certificate (attach the cluster again from a hub kubeconfig that verifies it), or check that the hub's address is the one its certificate was issued for", ErrHubCertificate, err, caFrom)
	case errors.As(err, &remote) && remote.Op == "remote error" && strings.Contains(remote.Err.Error(), "certificate"):
		// A TLS alert from the hub: with mutual TLS, its refusal of the
		// client certificate.
		return fmt.Errorf("%w (%v): the hub does not trust the CA that signed it; the identity may be from another hub or an earlier install of this one: remove it and register with a new bootstrap credential", ErrAgentCertificate, err)
	}
	return err
}
