// Package registration issues the single-use bootstrap credentials an agent
// registers with, and renders the kubeconfig that carries one. Bootstrap
// credentials are Kubernetes bootstrap tokens, so the hub's apiserver itself
// authenticates them and rejects expired ones.
package registration

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// Label and annotation on bootstrap token Secrets.
const (
	// LabelUsed marks a token an agent has registered with; a second use is refused.
	LabelUsed = "flotilla.dev/bootstrap-used"
	// AnnotationUsedBy names the UID of the certificate request that used
	// the token: approving that request again (after its approval failed
	// to be written) is no second use.
	AnnotationUsedBy = "flotilla.dev/bootstrap-used-by"
)

// UsedGrace is how long a used token lives on. A second agent using it in
// that time is refused with the reason in the Cluster's conditions; after
// it, the apiserver refuses the expired token itself. Keeping every used
// token for its whole TTL cost the hub a Secret per cluster in etcd, the
// apiserver's caches and its own, for nothing.
const UsedGrace = 5 * time.Minute

// Expiry reads when a bootstrap token Secret's token expires.
func Expiry(secret *corev1.Secret) (time.Time, error) {
	return time.Parse(time.RFC3339, string(secret.Data[bootstrapapi.BootstrapTokenExpirationKey]))
}

// KeepExpiryOnly drops all of secret's data but its expiry: what Expiry and
// Spend read. The token itself need not sit in the hub's memory.
func KeepExpiryOnly(secret *corev1.Secret) {
	exp, ok := secret.Data[bootstrapapi.BootstrapTokenExpirationKey]
	secret.Data, secret.StringData = nil, nil
	if ok {
		secret.Data = map[string][]byte{bootstrapapi.BootstrapTokenExpirationKey: exp}
	}
}

// Spend marks secret's token used by the request with UID by and makes it
// expire within UsedGrace.
func Spend(secret *corev1.Secret, by string, now time.Time) {
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[LabelUsed] = "true"
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationUsedBy] = by
	end := now.Add(UsedGrace).UTC().Truncate(time.Second)
	if exp, err := Expiry(secret); err == nil && exp.Before(end) {
		return
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(end.Format(time.RFC3339))
}

// Token is a bootstrap credential.
type Token struct {
	ID, Secret string
	Expires    time.Time
}

// String is the bearer token.
func (t Token) String() string { return t.ID + "." + t.Secret }

// SecretName is the name of the token's Secret in kube-system.
func (t Token) SecretName() string { return "bootstrap-token-" + t.ID }

// IssueToken stores a new bootstrap token for cluster, valid for ttl.
func IssueToken(ctx context.Context, cl client.Client, cluster string, ttl time.Duration) (Token, error) {
	// A token ID has six characters, as bootstrap tokens must: among 10,000
	// tokens two share one about once in 40 fleets, so a taken ID is drawn again.
	for attempt := 0; ; attempt++ {
		t := NewToken(ttl)
		err := cl.Create(ctx, tokenSecret(t, cluster))
		if apierrors.IsAlreadyExists(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return Token{}, fmt.Errorf("storing bootstrap token: %w", err)
		}
		return t, nil
	}
}

// NewToken draws a token valid for ttl; storing it is the caller's.
func NewToken(ttl time.Duration) Token {
	return Token{ID: random(6), Secret: random(16), Expires: time.Now().Add(ttl).UTC().Truncate(time.Second)}
}

func tokenSecret(t Token, cluster string) *corev1.Secret {
	s := t.AuthSecret("Flotilla agent registration for cluster " + cluster)
	s.Labels = map[string]string{fv1.LabelCluster: cluster}
	s.StringData[bootstrapapi.BootstrapTokenExtraGroupsKey] = fv1.BootstrapGroup
	return s
}

// AuthSecret is the kube-system Secret that makes the token authenticate
// to an apiserver with bootstrap-token authentication, as described.
func (t Token) AuthSecret(description string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: t.SecretName(), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenDescriptionKey:      description,
			bootstrapapi.BootstrapTokenIDKey:               t.ID,
			bootstrapapi.BootstrapTokenSecretKey:           t.Secret,
			bootstrapapi.BootstrapTokenExpirationKey:       t.Expires.Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		},
	}
}

// BootstrapKubeconfig renders a kubeconfig for the hub at server that
// authenticates with token. Its context is named after the cluster, which is
// how the agent learns which cluster it registers, and carries the attach
// (the Cluster's UID) its certificate must name.
func BootstrapKubeconfig(server string, caPEM []byte, cluster, attach string, token Token) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["flotilla-hub"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["bootstrap"] = &clientcmdapi.AuthInfo{Token: token.String()}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: "flotilla-hub", AuthInfo: "bootstrap"}
	kubeconfig.SetAttach(cfg.Contexts[cluster], attach)
	cfg.CurrentContext = cluster
	return clientcmd.Write(*cfg)
}

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func random(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}
