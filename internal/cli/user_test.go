package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv"
)

func TestCheckUserIdentity(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		groups []string
		want   string // "" for accepted
	}{
		{"plain", "alice", []string{"team-a", "team-b"}, ""},
		{"email", "alice@example.com", nil, ""},
		{"contains a reserved word", "my-system:thing", []string{"not-flotilla:x"}, ""},
		{"system user", "system:admin", nil, `user name "system:admin" is reserved`},
		{"agent user", fv1.AgentUser("prod"), nil, "is reserved"},
		{"reserved in another case", "System:kube-proxy", nil, "is reserved"},
		{"superuser group", "alice", []string{"team-a", "system:masters"}, `group "system:masters" is reserved`},
		{"agent group", "alice", []string{fv1.AgentGroup}, "is reserved"},
		{"attach group", "alice", []string{fv1.AttachGroup("uid")}, "is reserved"},
		{"empty user", " ", nil, "user name is empty"},
		{"empty group", "alice", []string{""}, "--group is empty"},
	}
	for _, tc := range cases {
		err := checkUserIdentity(tc.user, tc.groups)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCheckUserTTL(t *testing.T) {
	for ttl, ok := range map[time.Duration]bool{10 * time.Minute: true, 24 * time.Hour: true, 9 * time.Minute: false, 0: false, -time.Hour: false, 100 * 365 * 24 * time.Hour: false} {
		if err := checkUserTTL(ttl); (err == nil) != ok {
			t.Errorf("--ttl %s: err = %v", ttl, err)
		}
	}
}

func TestReportLifetime(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	asked := time.Now()
	cert := func(life time.Duration) []byte {
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
			NotBefore: asked.Add(-5 * time.Minute), NotAfter: asked.Add(life)}, &x509.Certificate{Subject: pkix.Name{CommonName: "ca"}}, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	var b bytes.Buffer
	if err := reportLifetime(&b, "alice", cert(time.Hour+time.Second), asked, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "valid until "+asked.Add(time.Hour+time.Second).UTC().Format(time.RFC3339)) || strings.Contains(b.String(), "shorter") {
		t.Errorf("full lifetime: %q", b.String())
	}
	b.Reset()
	if err := reportLifetime(&b, "alice", cert(24*time.Hour-5*time.Minute), asked, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "shorter") {
		t.Errorf("a --ttl at the cap, counted from the signer's backdated start: %q", b.String())
	}
	b.Reset()
	if err := reportLifetime(&b, "alice", cert(24*time.Hour), asked, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "24h0m0s, shorter than the --ttl 48h0m0s asked for") {
		t.Errorf("capped lifetime: %q", b.String())
	}
	if err := reportLifetime(&b, "alice", []byte("junk"), asked, time.Hour); err == nil {
		t.Error("junk certificate accepted")
	}
}

func TestUserKubeconfig(t *testing.T) {
	hub := &hubEntry{clusterName: "hub", cluster: &clientcmdapi.Cluster{Server: "https://hub:6443", CertificateAuthorityData: []byte("CA")}}
	cfg := userKubeconfig(hub, "alice", []byte("CERT"), []byte("KEY"))
	if cfg.CurrentContext != "alice@hub" || cfg.Contexts["alice@hub"].AuthInfo != "alice" || cfg.Contexts["alice@hub"].Cluster != "hub" {
		t.Errorf("contexts %+v, current %q", cfg.Contexts, cfg.CurrentContext)
	}
	if u := cfg.AuthInfos["alice"]; u == nil || string(u.ClientCertificateData) != "CERT" || string(u.ClientKeyData) != "KEY" {
		t.Errorf("user %+v", u)
	}
	if c := cfg.Clusters["hub"]; c == nil || c.Server != "https://hub:6443" || string(c.CertificateAuthorityData) != "CA" || c == hub.cluster {
		t.Errorf("cluster %+v, want a copy of the hub's", c)
	}
}

// runCLI runs flotilla with args in this process.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// A user kubeconfig authenticates to a real hub as that user in those
// groups, leaves no request behind, and reaches clusters through the hub
// once `flotilla kubeconfig` is built from it.
func TestUserKubeconfigOnHub(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	hub := env.Hub.Kubeconfig
	ctx := context.Background()

	out, stderr, err := runCLI(t, "user", "kubeconfig", "alice", "--group", "team-a", "--ttl", "1h", "--hub-kubeconfig", hub)
	if err != nil {
		t.Fatalf("user kubeconfig: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "certificate for alice valid until ") || strings.Contains(stderr, "shorter") {
		t.Errorf("stderr: %q", stderr)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(out))
	if err != nil {
		t.Fatalf("output is not a kubeconfig: %v\n%s", err, out)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("authenticating as alice: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != "alice" || !slices.Contains(u.Groups, "team-a") {
		t.Errorf("the hub sees %s in %v; want alice in team-a", u.Username, u.Groups)
	}
	csrs, err := env.Hub.Clientset.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range csrs.Items {
		if strings.HasPrefix(c.Name, "flotilla-user-") {
			t.Errorf("certificate request %s left behind (%v)", c.Name, c.Status.Conditions)
		}
	}

	for _, args := range [][]string{{"system:admin"}, {"bob", "--group", "system:masters"}, {fv1.AgentUser("lab")}} {
		if _, _, err := runCLI(t, append([]string{"user", "kubeconfig", "--hub-kubeconfig", hub}, args...)...); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("user kubeconfig %v: err = %v, want reserved", args, err)
		}
	}

	// flotilla kubeconfig, as the admin and as alice, who may not read
	// clusters: she gets the entries unchecked, with her certificate.
	if _, _, err := runCLI(t, "kubeconfig", "--all", "--hub-kubeconfig", hub); err == nil || !strings.Contains(err.Error(), "no clusters") {
		t.Errorf("kubeconfig --all on an empty hub: err = %v", err)
	}
	if err := env.Hub.Client.Create(ctx, &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "lab"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "kubeconfig", "lab", "nosuch", "--hub-kubeconfig", hub); err == nil || !strings.Contains(err.Error(), `unknown cluster "nosuch"; see 'flotilla cluster list'`) {
		t.Errorf("kubeconfig nosuch: err = %v", err)
	}
	if out, _, err := runCLI(t, "kubeconfig", "--all", "--hub-kubeconfig", hub); err != nil || !strings.Contains(out, fv1.ProxyPath("lab")) {
		t.Errorf("kubeconfig --all: %v\n%s", err, out)
	}
	aliceFile := t.TempDir() + "/alice.kubeconfig"
	if err := clientcmd.WriteToFile(*mustLoad(t, out), aliceFile); err != nil {
		t.Fatal(err)
	}
	fleet, stderr, err := runCLI(t, "kubeconfig", "lab", "--hub-kubeconfig", aliceFile)
	if err != nil || !strings.Contains(stderr, "not checked") {
		t.Fatalf("kubeconfig lab as alice: %v, stderr %q", err, stderr)
	}
	got := mustLoad(t, fleet)
	if got.CurrentContext != "lab" || got.Clusters["lab"].Server != cfg.Host+fv1.ProxyPath("lab") || len(got.AuthInfos["alice"].ClientCertificateData) == 0 {
		t.Errorf("alice's fleet kubeconfig: %+v", got)
	}
}

func mustLoad(t *testing.T, data string) *clientcmdapi.Config {
	t.Helper()
	cfg, err := clientcmd.Load([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
