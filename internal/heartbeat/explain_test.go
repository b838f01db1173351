package heartbeat

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A stream dialled to a hub whose certificate the agent's CA does not
// verify fails saying so, not as an unreachable hub; one the hub answers
// 401 says the hub refused the credential.
func TestUpgradeExplainsTLSAnd401(t *testing.T) {
	hub := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "a client certificate is required", http.StatusUnauthorized)
	}))
	defer hub.Close()
	ctx := context.Background()

	// An agent with another CA than the one that signed the hub's certificate.
	stranger := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
	_, err := Upgrade(ctx, stranger, hub.URL+StreamPath)
	if !errors.Is(err, ErrHubCertificate) || !strings.Contains(err.Error(), "cannot verify the hub's certificate (") ||
		!strings.Contains(err.Error(), "does not match the hub's serving certificate") || !strings.Contains(err.Error(), "heartbeatCA") {
		t.Errorf("dialling a hub the CA does not verify: %v; want that the hub's certificate cannot be verified, and which CA", err)
	}

	// An agent that verifies it, whose credential the hub refuses.
	_, err = Upgrade(ctx, hub.Client().Transport, hub.URL+StreamPath)
	if err == nil || !strings.Contains(err.Error(), "refused the agent's credential (401)") || !strings.Contains(err.Error(), "a client certificate is required") {
		t.Errorf("dialling a hub that answers 401: %v; want the 401 with the hub's message", err)
	}
	if errors.Is(err, ErrHubCertificate) {
		t.Errorf("a 401 taken for a certificate failure: %v", err)
	}
}

// The hub refusing the agent's client certificate in the TLS handshake is
// said as such.
func TestUpgradeExplainsRefusedClientCertificate(t *testing.T) {
	hub := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	hub.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool()}
	hub.StartTLS()
	defer hub.Close()
	_, err := Upgrade(context.Background(), hub.Client().Transport, hub.URL+StreamPath)
	if !errors.Is(err, ErrAgentCertificate) {
		t.Errorf("a hub refusing the client certificate: %v; want ErrAgentCertificate", err)
	}
}

// Errors that are not TLS failures pass as they are.
func TestExplainTLSLeavesOthers(t *testing.T) {
	for _, err := range []error{nil, errors.New("connection refused"), context.DeadlineExceeded} {
		if got := ExplainTLS(err, "x"); got != err {
			t.Errorf("ExplainTLS(%v) = %v; want it unchanged", err, got)
		}
	}
}
