package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/testenv"
)

// The agent renews its certificate with its own identity before it expires,
// and heartbeats go on with the new one.
func TestCertificateRotation(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1, Nodes: 1})
	ctx := context.Background()
	boot, err := attach.Attach(ctx, env.Hub.Client, env.Hub.Config, attach.Options{Name: "rot"})
	if err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(t.TempDir(), "boot")
	os.WriteFile(bootPath, boot, 0o600)
	dir, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// The identity lives in a Secret of the member cluster, as for an agent
	// in a pod: created on registration, updated on rotation.
	if _, err := env.Clusters[0].Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	member, err := dynamic.NewForConfig(env.Clusters[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	server, err := restClientFor(env.Clusters[0].Config, corev1.SchemeGroupVersion)
	if err != nil {
		t.Fatal(err)
	}
	store, err := newSecretStore(member, SystemNamespace+"/agent-identity")
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{
		c:      Config{BootstrapKubeconfig: bootPath, CertTTL: 10 * time.Minute, Interval: time.Second},
		dir:    dir,
		store:  store,
		server: server,
		dyn:    member,
	}
	id, err := a.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.use(id); err != nil {
		t.Fatal(err)
	}
	hub, err := a.hubClient()
	if err != nil {
		t.Fatal(err)
	}
	rt, url, err := a.heartbeatTransport(ctx, hub)
	if err != nil {
		t.Fatal(err)
	}
	beat := func() error {
		stream, err := heartbeat.Dial(ctx, rt, url, func(string) {})
		if err != nil {
			return err
		}
		defer stream.Close()
		_, err = a.beat(ctx, stream, &memberView{}, newOutbox())
		return err
	}
	if err := beat(); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	if rotated, err := a.rotateIfDue(ctx); err != nil || rotated || a.current() != id {
		t.Fatalf("rotated a fresh certificate: %v", err)
	}
	// The hub records the certificate from the first heartbeat, in the
	// background; until then the registration's request counts as in flight
	// and a renewal is refused.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "rot"}, &c)
		return err == nil && c.Status.AgentCertificate != nil, nil
	}); err != nil {
		t.Fatalf("the hub did not record the agent's certificate: %v", err)
	}

	// Make the certificate look 80 % through its life.
	aged := *id
	aged.Issued = id.NotAfter.Add(-time.Hour)
	if err := a.use(&aged); err != nil {
		t.Fatal(err)
	}
	if rotated, err := a.rotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("rotation: %v", err)
	}
	next := a.current()
	if string(next.CertPEM) == string(id.CertPEM) {
		t.Fatal("certificate not renewed")
	}
	data, err := store.load(ctx)
	if saved, ok := decodeIdentity(data); err != nil || !ok || string(saved.CertPEM) != string(next.CertPEM) {
		t.Errorf("renewed identity not saved in the Secret: %v", err)
	}
	var csrs certificatesv1.CertificateSigningRequestList
	if err := env.Hub.Client.List(ctx, &csrs); err != nil {
		t.Fatal(err)
	}
	renewed := false
	for _, c := range csrs.Items {
		if c.Spec.Username == fv1.AgentUser("rot") {
			renewed = true
		}
	}
	if !renewed {
		t.Error("no CSR made with the agent's own identity")
	}
	// A new stream presents the new certificate, and the hub deletes both
	// requests, whose certificates are no newer.
	if err := beat(); err != nil {
		t.Fatalf("heartbeat after rotation: %v", err)
	}
	left := 0
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		left = 0
		err := env.Hub.Client.List(ctx, &csrs)
		for _, c := range csrs.Items {
			if strings.HasPrefix(c.Name, "flotilla-agent-rot-") {
				left++
			}
		}
		return err == nil && left == 0, err
	})
	if err != nil {
		t.Errorf("used CSRs not deleted: %v; %d left", err, left)
	}
}
