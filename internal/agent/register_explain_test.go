package agent

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/pki"
)

// Registration reports what it cannot get past as what it is, at once: a
// hub whose certificate the bootstrap kubeconfig's CA does not verify, and
// a hub that answers 401 to the bootstrap token (or to the identity, when
// renewing).
func TestRegistrationExplainsTLSAnd401(t *testing.T) {
	hub := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
	}))
	defer hub.Close()
	hubCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hub.Certificate().Raw})
	other, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "another-ca")
	if err != nil {
		t.Fatal(err)
	}
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	register := func(cfg *rest.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := requestIdentity(ctx, cfg, "c1", "uid-1", key, time.Hour)
		if ctx.Err() != nil {
			t.Fatalf("registration waited out its context: %v", err)
		}
		return err
	}
	cases := []struct {
		name   string
		cfg    *rest.Config
		want   []string
		target error
	}{
		{"unknown CA", &rest.Config{Host: hub.URL, BearerToken: "abcdef.0123456789abcdef", TLSClientConfig: rest.TLSClientConfig{CAData: other.CertPEM()}},
			[]string{"cannot verify the hub's certificate (", "the bootstrap kubeconfig's CA does not match the hub's serving certificate"}, heartbeat.ErrHubCertificate},
		{"401 to the bootstrap token", &rest.Config{Host: hub.URL, BearerToken: "abcdef.0123456789abcdef", TLSClientConfig: rest.TLSClientConfig{CAData: hubCA}},
			[]string{"the hub refused the bootstrap credential (401): it has expired, was used, or the hub does not accept bootstrap tokens", "--enable-bootstrap-token-auth"}, errTokenRejected},
		{"401 to the identity", &rest.Config{Host: hub.URL, TLSClientConfig: rest.TLSClientConfig{CAData: hubCA}},
			[]string{"the hub refused the agent's certificate (401)"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := register(tc.cfg)
			var perm errPermanent
			if !errors.As(err, &perm) {
				t.Fatalf("%v; want a permanent error, not one retried", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v; want it to say %q", err, w)
				}
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("%v is not %v", err, tc.target)
			}
		})
	}
}
