package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// minUserTTL is the shortest certificate the apiserver lets a CSR ask for.
	minUserTTL = 10 * time.Minute
	// signTimeout bounds the wait for the hub to sign an approved request.
	signTimeout = 30 * time.Second
	// userCSRReason marks the approvals this command makes.
	userCSRReason = "FlotillaUserKubeconfig"
)

// reservedPrefixes begin the names of identities that Kubernetes and
// Flotilla give their own components (system:masters is the superuser,
// agents are flotilla:cluster:NAME in flotilla:clusters): a person's
// certificate must not pass for one of them.
var reservedPrefixes = []string{"system:", "flotilla:"}

// newUserCmd is `flotilla user`.
func newUserCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "user",
		Aliases: []string{"users"},
		Short:   "Credentials for the hub's users",
	}
	o.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newUserKubeconfigCmd(o))
	return cmd
}

func newUserKubeconfigCmd(o *hubOptions) *cobra.Command {
	var groups []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME",
		Short: "Issue a short-lived client-certificate kubeconfig for a hub user",
		Long: `Issue a kubeconfig for user NAME, in the groups --group names, that authenticates to
the hub with a client certificate the hub signs. It needs the hub admin's
credentials (--hub-kubeconfig): the request is created, approved and, once
signed, deleted; the key never leaves this process but in the output.

The hub's signer caps the lifetime at its --agent-certificate-lifetime (24h by
default); the certificate's expiry is printed on stderr. What the user may do is
up to the hub's RBAC: bind NAME or its groups to roles (for clusters/proxy in
proxy.flotilla.dev to reach clusters), then give them the output.

  flotilla user kubeconfig alice --group team-a --ttl 8h > alice.kubeconfig`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if err := checkUserIdentity(name, groups); err != nil {
				return err
			}
			if err := checkUserTTL(ttl); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				hubCfg, err := clientcmd.LoadFromFile(o.kubeconfig)
				if err != nil {
					return fmt.Errorf("kubeconfig %s is not valid: %v", o.kubeconfig, err)
				}
				hub, err := currentHub(hubCfg)
				if err != nil {
					return fmt.Errorf("kubeconfig %s: %v", o.kubeconfig, err)
				}
				asked := time.Now()
				certPEM, keyPEM, err := issueUserCertificate(ctx, cl, name, groups, ttl)
				if err != nil {
					return err
				}
				if err := reportLifetime(c.ErrOrStderr(), name, certPEM, asked, ttl); err != nil {
					return err
				}
				return writeKubeconfig(c.OutOrStdout(), userKubeconfig(hub, name, certPEM, keyPEM))
			})
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group of the user (repeat for several)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the certificate is valid, at least 10m; the hub may cap it")
	return cmd
}

// checkUserIdentity refuses an empty or reserved user name or group.
func checkUserIdentity(name string, groups []string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("the user name is empty; give one, e.g. 'flotilla user kubeconfig alice'")
	}
	if p := reservedPrefix(name); p != "" {
		return fmt.Errorf("user name %q is reserved: names starting with %q belong to Kubernetes' and Flotilla's own components; choose another name", name, p)
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" {
			return errors.New("--group is empty; give a group name or leave the flag out")
		}
		if p := reservedPrefix(g); p != "" {
			return fmt.Errorf("group %q is reserved: groups starting with %q carry the privileges of Kubernetes' and Flotilla's own components; choose another group", g, p)
		}
	}
	return nil
}

// reservedPrefix returns the reserved prefix s starts with, in any case,
// or "".
func reservedPrefix(s string) string {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(strings.ToLower(s), p) {
			return p
		}
	}
	return ""
}

// checkUserTTL refuses what the apiserver would refuse in the request.
func checkUserTTL(ttl time.Duration) error {
	if ttl < minUserTTL {
		return fmt.Errorf("--ttl %s is too short: the hub signs nothing shorter than %s", ttl, minUserTTL)
	}
	if ttl/time.Second > math.MaxInt32 {
		return fmt.Errorf("--ttl %s is too long; the hub caps certificates at its --agent-certificate-lifetime anyway (24h by default)", ttl)
	}
	return nil
}

// issueUserCertificate has the hub sign a client certificate for name in
// groups, valid for ttl or the hub's cap, and returns it with its key, both
// PEM. The request is deleted whatever happens: nobody else holds its key.
func issueUserCertificate(ctx context.Context, c client.Client, name string, groups []string, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	reqDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name, Organization: groups},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	secs := int32(ttl / time.Second)
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "flotilla-user-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: reqDER}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			ExpirationSeconds: &secs,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		},
	}
	if err := c.Create(ctx, csr); err != nil {
		return nil, nil, fmt.Errorf("creating the certificate request: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hubTimeout)
		defer cancel()
		if derr := client.IgnoreNotFound(c.Delete(dctx, csr)); derr != nil && err == nil {
			err = fmt.Errorf("deleting certificate request %s: %w", csr.Name, derr)
		}
	}()

	// The apiserver filled in who created the request.
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:    certificatesv1.CertificateApproved,
		Status:  corev1.ConditionTrue,
		Reason:  userCSRReason,
		Message: fmt.Sprintf("%s issued a kubeconfig for user %q with 'flotilla user kubeconfig'", csr.Spec.Username, name),
	})
	if err := c.SubResource("approval").Update(ctx, csr); err != nil {
		return nil, nil, fmt.Errorf("approving certificate request %s: %w", csr.Name, err)
	}

	var failed string
	werr := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, signTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
			return false, err
		}
		for _, cond := range csr.Status.Conditions {
			if (cond.Type == certificatesv1.CertificateFailed || cond.Type == certificatesv1.CertificateDenied) && cond.Status == corev1.ConditionTrue {
				failed = fmt.Sprintf("%s: %s %s", cond.Type, cond.Reason, cond.Message)
				return true, nil
			}
		}
		return len(csr.Status.Certificate) > 0, nil
	})
	switch {
	case failed != "":
		return nil, nil, fmt.Errorf("the hub did not sign certificate request %s (%s)", csr.Name, strings.TrimSpace(failed))
	case wait.Interrupted(werr) && ctx.Err() == nil:
		// Not %w: this is no unreachable hub, which hubError would claim.
		return nil, nil, fmt.Errorf("the hub approved certificate request %s but did not sign it within %s; is its kube-controller-manager running? (see the hub's logs)", csr.Name, signTimeout)
	case werr != nil:
		return nil, nil, werr
	}
	return csr.Status.Certificate, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// reportLifetime tells when the certificate expires, and says so plainly
// when the hub cut the lifetime asked for at asked.
func reportLifetime(w io.Writer, name string, certPEM []byte, asked time.Time, ttl time.Duration) error {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("the hub returned a certificate that is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("the hub returned a certificate that cannot be parsed: %v", err)
	}
	fmt.Fprintf(w, "certificate for %s valid until %s\n", name, cert.NotAfter.UTC().Format(time.RFC3339))
	// The signer counts its cap from 5 minutes before it signs, so a --ttl
	// at the cap ends 5 minutes early; that and a minute of clock skew are
	// not worth a note.
	if got := cert.NotAfter.Sub(asked); got < ttl-6*time.Minute {
		fmt.Fprintf(w, "note: that is %s, shorter than the --ttl %s asked for: the hub caps certificates at its --agent-certificate-lifetime\n", got.Round(time.Minute), ttl)
	}
	return nil
}

// userKubeconfig is a kubeconfig for hub's server as user name, with the
// certificate and key inline.
func userKubeconfig(hub *hubEntry, name string, certPEM, keyPEM []byte) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cluster := hub.cluster.DeepCopy()
	cfg.Clusters[hub.clusterName] = cluster
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	ctxName := name + "@" + hub.clusterName
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: hub.clusterName, AuthInfo: name}
	cfg.CurrentContext = ctxName
	return cfg
}
