package attach_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// The hub, not the agent, decides how long an identity lives and how it
// renews: an attacker holding an agent's identity cannot get a long-lived
// certificate, fork the identity from a superseded certificate, mint many
// at once, or ask for another cluster's, and each refusal is a Denied
// request with its reason, not one left Pending.
func TestRenewalIsTheHubsDecision(t *testing.T) {
	const name, other = "renew", "renew-other"
	a := attachAndRun(t, name, env.Clusters[1])
	uid := string(getCluster(t, name).UID)
	cur := steal(t, a.Dir)
	// Registration got the hub's lifetime (the signer backdates 5 min).
	if life := cur.cert.NotAfter.Sub(cur.cert.NotBefore); life > 24*time.Hour+5*time.Minute {
		t.Errorf("the registered certificate lives %s, more than the hub's 24h", life)
	}

	// A year is refused, with the hub's limit in the reason.
	csr, _ := askCertificate(t, cur.client(t), name, uid, 365*24*time.Hour)
	if reason, msg, cert := csrOutcome(t, csr); cert != nil || reason != "LifetimeTooLong" || !strings.Contains(msg, "24h0m0s") {
		t.Errorf("a renewal for a year: issued=%v %s: %s; want LifetimeTooLong naming 24h0m0s", cert != nil, reason, msg)
	}

	// A rotation of the current certificate is issued.
	csr, key := askCertificate(t, cur.client(t), name, uid, time.Hour)
	reason, msg, cert := csrOutcome(t, csr)
	if cert == nil {
		t.Fatalf("a rotation by the current certificate: %s: %s", reason, msg)
	}
	next := cur.withCert(t, cert, key)
	waitFor(t, 10*time.Second, "the rotation recorded as the current certificate", func(context.Context) (bool, error) {
		c := getCluster(t, name).Status.AgentCertificate
		return c != nil && c.NotAfter.Time.Equal(cert.NotAfter), nil
	})

	// The superseded certificate may no longer renew.
	csr, _ = askCertificate(t, cur.client(t), name, uid, time.Hour)
	if reason, msg, cert := csrOutcome(t, csr); cert != nil || reason != "NotCurrentCertificate" {
		t.Errorf("a renewal by the superseded certificate: issued=%v %s: %s; want NotCurrentCertificate", cert != nil, reason, msg)
	}

	// A burst from the current one: at most one is issued, all are decided.
	const burst = 20
	names := make([]string, burst)
	var wg sync.WaitGroup
	as := next.client(t)
	for i := range names {
		wg.Add(1)
		go func() { defer wg.Done(); names[i], _ = askCertificate(t, as, name, uid, time.Hour) }()
	}
	wg.Wait()
	issued, reasons := 0, map[string]int{}
	for _, n := range names {
		reason, _, cert := csrOutcome(t, n)
		if cert != nil {
			issued++
		} else {
			reasons[reason]++
		}
	}
	t.Logf("a burst of %d renewals: %d issued, denied %v", burst, issued, reasons)
	if issued > 1 {
		t.Errorf("a burst of %d renewals issued %d certificates, want at most 1 (denied: %v)", burst, issued, reasons)
	}

	// Another cluster's identity: denied, and that cluster's conditions are
	// not the requester's to set.
	otherBoot := attachCluster(t, other, attach.Options{})
	otherUID := string(getCluster(t, other).UID)
	csr, _ = askCertificate(t, next.client(t), other, otherUID, time.Hour)
	if reason, msg, cert := csrOutcome(t, csr); cert != nil || reason != "ForeignCluster" {
		t.Errorf("%s's agent asking for %s's identity: issued=%v %s: %s; want ForeignCluster", name, other, cert != nil, reason, msg)
	}
	bootCfg, err := kubeconfig.Load(otherBoot)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ = askCertificate(t, stolen{cfg: bootCfg}.client(t), name, uid, time.Hour)
	if reason, msg, cert := csrOutcome(t, csr); cert != nil || reason != "BootstrapMismatch" {
		t.Errorf("%s's bootstrap credential asking for %s's identity: issued=%v %s: %s; want BootstrapMismatch", other, name, cert != nil, reason, msg)
	}
	if c := meta.FindStatusCondition(getCluster(t, name).Status.Conditions, fv1.ClusterConditionBootstrapRefused); c != nil {
		t.Errorf("%s's bootstrap credential set %s's condition %+v", other, name, c)
	}
}
