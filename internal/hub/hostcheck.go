package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"flotilla.dev/flotilla/internal/registration"
)

// checkHost checks, before a hub starts on a host cluster, that agents will
// be able to register with it: the host's apiserver must authenticate
// bootstrap tokens (an agent's first credential) and agents must be able to
// verify its serving certificate. Either missing, every agent would fail at
// registration, far from the cause; the hub refuses to start instead and
// says what to change. path is the kubeconfig cfg was read from.
func checkHost(ctx context.Context, cfg *rest.Config, path string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := checkHostCA(ctx, cs, cfg, path); err != nil {
		return err
	}
	return checkBootstrapTokens(ctx, cs, cfg, path)
}

// checkHostCA checks that an agent can verify the host's certificate: the
// kubeconfig carries a CA, which attach puts in bootstrap kubeconfigs, or
// the host publishes one in kube-public/cluster-info.
func checkHostCA(ctx context.Context, cs kubernetes.Interface, cfg *rest.Config, path string) error {
	switch {
	case len(cfg.CAData) > 0 || cfg.CAFile != "":
		return nil // the host was reached through it: it verifies the host
	case !cfg.Insecure:
		return nil // the host was reached, verified by the system's roots: so will agents be
	}
	// The kubeconfig skips verification: only the host can say what
	// verifies it.
	cm, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("checking the host cluster's CA (kube-public/cluster-info): %v", err)
	}
	var ca []byte
	if err == nil {
		if info, err := clientcmd.Load([]byte(cm.Data["kubeconfig"])); err == nil {
			for _, c := range info.Clusters {
				if len(c.CertificateAuthorityData) > 0 {
					ca = c.CertificateAuthorityData
					break
				}
			}
		}
	}
	if ca == nil {
		return fmt.Errorf("agents could not verify the host cluster's certificate: the kubeconfig %s skips verification (insecure-skip-tls-verify) and carries no CA, and the host publishes none in kube-public/cluster-info; give --kubeconfig a kubeconfig with the CA of the host's apiserver (certificate-authority-data), which attach then puts in bootstrap kubeconfigs", path)
	}
	// The published CA must verify the host as the hub reaches it.
	probe := rest.AnonymousClientConfig(cfg)
	probe.Insecure, probe.CAData, probe.CAFile = false, ca, ""
	probe.Timeout = 10 * time.Second
	pcs, err := kubernetes.NewForConfig(probe)
	if err != nil {
		return err
	}
	// Any HTTP answer, refusals included, means TLS verified the host.
	if err := pcs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil && !isHTTPStatus(err) {
		return fmt.Errorf("agents could not verify the host cluster's certificate: the kubeconfig %s skips verification, and the CA in kube-public/cluster-info does not verify %s (%v); give --kubeconfig a kubeconfig with the CA of the host's apiserver (certificate-authority-data)", path, cfg.Host, err)
	}
	return nil
}

// checkBootstrapTokens creates a bootstrap token that expires in minutes,
// makes one request with it and deletes it. An agent registers with a
// bootstrap token, so a host that answers 401 to a valid one cannot
// register any.
func checkBootstrapTokens(ctx context.Context, cs kubernetes.Interface, cfg *rest.Config, path string) error {
	tok := registration.NewToken(5 * time.Minute)
	name := tok.SecretName()
	_, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx,
		tok.AuthSecret("Flotilla hub start check: whether the host accepts bootstrap tokens; deleted once checked"), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("checking that the host cluster accepts bootstrap tokens: creating one in kube-system: %v; the identity in %s needs to create Secrets in kube-system, as the hub does for every attach", err, path)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(dctx, name, metav1.DeleteOptions{})
	}()
	probe := rest.AnonymousClientConfig(cfg)
	probe.BearerToken = tok.String()
	probe.Timeout = 10 * time.Second
	pcs, err := kubernetes.NewForConfig(probe)
	if err != nil {
		return err
	}
	// The apiserver learns of a new token from its Secret informer: a 401
	// counts only once it has had time to.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := pcs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		switch {
		case err == nil || !apierrors.IsUnauthorized(err) && isHTTPStatus(err):
			return nil // authenticated; what it may do is not the question
		case !apierrors.IsUnauthorized(err):
			return fmt.Errorf("checking that the host cluster accepts bootstrap tokens: %v", err)
		case time.Now().After(deadline):
			return fmt.Errorf("the host cluster does not accept bootstrap tokens, and agents register with one: a valid token the hub created in kube-system was refused (401 Unauthorized); start the host's kube-apiserver with --enable-bootstrap-token-auth=true (kubeadm-made clusters have it), or run the hub with its own apiserver (flotilla hub without --kubeconfig)")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// isHTTPStatus says whether err is an HTTP answer from the apiserver, as
// opposed to a failure to get one.
func isHTTPStatus(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status)
}
