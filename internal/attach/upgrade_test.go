package attach_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/pki"
)

// A cluster attached by an earlier version, whose agent's certificate names
// no attach, keeps working when the hub upgrades: the hub finds the
// earlier binding, marks the Cluster name-only and accepts that
// certificate. Once the cluster is detached and attached again, the same
// certificate is refused.
func TestEarlierVersionsAgentKeepsWorkingUntilDetach(t *testing.T) {
	ctx := context.Background()
	const name = "earlier"
	attachCluster(t, name, attach.Options{})
	ns := fv1.HubNamespace(name)
	// What an earlier hub made: the agent's binding names its user.
	var rb rbacv1.RoleBinding
	waitFor(t, 30*time.Second, "the agent's binding", func(ctx context.Context) (bool, error) {
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flotilla-agent"}, &rb)
		return err == nil, client.IgnoreNotFound(err)
	})
	rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fv1.AgentUser(name)}}
	if err := env.Hub.Client.Update(ctx, &rb); err != nil {
		t.Fatal(err)
	}
	env.Hub.Stop()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Cluster marked name-only", func(context.Context) (bool, error) {
		return getCluster(t, name).Annotations[fv1.AnnotationNameOnlyIdentity] == "true", nil
	})

	// The earlier agent's certificate: its name and the agents' group only.
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.Hub.Dir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Client(t.TempDir(), "agent", fv1.AgentUser(name), fv1.AgentGroup)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeconfig.Load(env.Hub.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BearerToken, cfg.Username, cfg.Password = "", "", ""
	cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile = nil, nil, pair.CertFile, pair.KeyFile
	earlier := stolen{cfg: cfg}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	url, pool := streamEndpoint(t, name)
	dial := func() error {
		rt := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
		defer rt.CloseIdleConnections()
		s, err := heartbeat.Dial(ctx, rt, url, func(string) {})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := earlier.client(t).List(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns)); err != nil {
		t.Errorf("the earlier agent reading its namespace after the upgrade: %v", err)
	}
	if err := dial(); err != nil {
		t.Errorf("the earlier agent opening its stream after the upgrade: %v", err)
	}

	// Detached and attached again: the name-only certificate is refused.
	if err := attach.Detach(ctx, env.Hub.Client, name, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	attachCluster(t, name, attach.Options{})
	waitFor(t, 30*time.Second, "the new attach's hub namespace", func(ctx context.Context) (bool, error) {
		var n corev1.Namespace
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: ns}, &n)
		return err == nil && n.DeletionTimestamp == nil, client.IgnoreNotFound(err)
	})
	if getCluster(t, name).Annotations[fv1.AnnotationNameOnlyIdentity] != "" {
		t.Error("the new attach is marked name-only")
	}
	if err := earlier.client(t).List(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns)); err == nil {
		t.Error("the earlier agent reads the new attach's namespace")
	}
	if err := dial(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("the earlier agent opening a stream to the new attach: %v; want 403", err)
	}
}
