package lifecycle

import (
	"testing"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/bench"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// With three control-plane members behind the cluster's one address, a
// rolling upgrade keeps the API answering: every GET of ten a second
// succeeds while each member in turn is stopped and started at the new
// version (a GET a stopping member answers with Retry-After is retried
// once, as Kubernetes clients do).
func TestThreeMemberControlPlaneAnswersThroughUpgrade(t *testing.T) {
	const name = "ha"
	mustFlotilla(t, "cluster", "create", name, "--version", older, "--nodes", "1", "--control-plane", "3", "--wait", "--timeout", "3m")
	defer deleteCluster(t, name)
	_, path := member(t, name)
	cfg, err := kubeconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := bench.ProbeGETs(cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	mustFlotilla(t, "cluster", "upgrade", name, "--version", newer, "--wait", "--timeout", "4m")
	ok, total, retried, first := probe.Stop()
	t.Logf("GETs during the upgrade: %d of %d succeeded, %d of them after the apiserver's Retry-After", ok, total, retried)
	if total < 20 || ok != total {
		t.Errorf("%d of %d GETs succeeded during the upgrade; first failure: %s", ok, total, first)
	}
	members := 0
	for _, c := range cluster(t, name).Status.Lifecycle.ControlPlane {
		if c.Version == newer && c.Ready {
			members++
		}
	}
	// Three apiservers, the controller manager and the scheduler.
	if members != 5 {
		t.Errorf("%d components Ready at %s: %+v", members, newer, cluster(t, name).Status.Lifecycle.ControlPlane)
	}
	if st := cluster(t, name).Status.Lifecycle; st.Phase != fv1.LifecycleReady {
		t.Errorf("phase %s after the upgrade", st.Phase)
	}
}
