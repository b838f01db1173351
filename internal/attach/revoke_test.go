package attach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// An attacker who copied an agent's identity, and renewed it for a key of
// its own before the cluster was detached, holds nothing once the cluster
// is attached again under the same name: the apiserver, the stream and
// renewal all refuse both certificates, and the new attach's agent
// registers and runs.
func TestDetachRevokesAndReattachIsNewIdentity(t *testing.T) {
	ctx := context.Background()
	const name = "revoke"
	a := attachAndRun(t, name, env.Clusters[0])
	old := getCluster(t, name)
	first := steal(t, a.Dir)
	if got := fv1.AttachOf(first.cert.Subject.Organization); got != string(old.UID) {
		t.Fatalf("the agent's certificate is bound to attach %q, want the Cluster's UID %s (organizations %v)", got, old.UID, first.cert.Subject.Organization)
	}
	// The attacker renews the stolen identity for its own key while the
	// cluster is still attached, as the agent itself may.
	csr, key := askCertificate(t, first.client(t), name, string(old.UID), time.Hour)
	reason, msg, cert := csrOutcome(t, csr)
	if cert == nil {
		t.Fatalf("a renewal with the current certificate was refused: %s: %s", reason, msg)
	}
	renewed := first.withCert(t, cert, key)

	if err := attach.Detach(ctx, env.Hub.Client, name, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	<-a.Done()
	boot := attachCluster(t, name, attach.Options{}) // no agent yet
	cur := getCluster(t, name)
	if cur.UID == old.UID {
		t.Fatal("the re-attached Cluster kept its UID")
	}
	waitFor(t, 30*time.Second, "the new attach's hub namespace", func(ctx context.Context) (bool, error) {
		var ns corev1.Namespace
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: fv1.HubNamespace(name)}, &ns)
		return err == nil && ns.DeletionTimestamp == nil, client.IgnoreNotFound(err)
	})
	url, pool := streamEndpoint(t, name)

	for which, s := range map[string]stolen{"the agent's certificate": first, "its renewal": renewed} {
		// The apiserver: the new namespace and its desired state.
		as := s.client(t)
		for what, err := range map[string]error{
			"list ConfigMaps":        as.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(fv1.HubNamespace(name))),
			"list ClusterNamespaces": as.List(ctx, &fv1.ClusterNamespaceList{}, client.InNamespace(fv1.HubNamespace(name))),
			"create a Lease":         as.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: fv1.HubNamespace(name), Name: "x"}}),
		} {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s, after re-attach: %s: want forbidden, got %v", which, what, err)
			}
		}
		// The stream.
		if _, err := heartbeat.Dial(ctx, s.transport(t, pool), url, func(string) {}); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "earlier attach") {
			t.Errorf("%s, after re-attach: dialing the stream: %v; want 403 naming an earlier attach", which, err)
		}
		// Renewal, bound to the old attach or claiming the new one.
		for bound, uid := range map[string]string{"the old attach": string(old.UID), "the new attach": string(cur.UID)} {
			csr, _ := askCertificate(t, as, name, uid, time.Hour)
			reason, msg, cert := csrOutcome(t, csr)
			if cert != nil || (reason != "StaleAttach" && reason != "StaleIdentity") {
				t.Errorf("%s, after re-attach: renewal bound to %s: issued=%v reason %q (%s); want denied as stale", which, bound, cert != nil, reason, msg)
			}
		}
	}
	if h := getCluster(t, name).Status.Health; h != fv1.HealthUnknown {
		t.Errorf("the new attach's health is %s before its agent ran, want Unknown", h)
	}

	// The new attach's own agent registers and runs.
	if err := newAgent(t, name, env.Clusters[0], boot, "").Run(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, name, 30*time.Second, fv1.HealthHealthy)
}
