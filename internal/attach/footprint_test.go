package attach_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
)

// maxNamespaces is the hub's bound on one agent's namespaces in these tests.
const maxNamespaces = 40

// An attacker with one agent's identity cannot grow that cluster's footprint
// on the hub without bound: ClusterNamespaces stop at the hub's bound, with a
// message that says so; an oversized labels map is refused by the API; and
// the agent may create no Leases at all.
func TestAgentFootprintIsBounded(t *testing.T) {
	ctx := context.Background()
	const name = "footprint"
	a := attachAndRun(t, name, env.Clusters[1])
	as := steal(t, a.Dir).client(t)
	ns := fv1.HubNamespace(name)
	// The real agent would create each flooded namespace in its cluster.
	a.Stop()

	// Flood until the hub refuses, then count: a create the agent had in
	// flight when it stopped may land after any count taken before the flood.
	var refused error
	flooded := 0
	for ; flooded <= maxNamespaces && refused == nil; flooded++ {
		cn := &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%d", flooded)}}
		refused = as.Create(ctx, cn)
	}
	var have fv1.ClusterNamespaceList
	if err := env.Hub.Client.List(ctx, &have, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(have.Items) != maxNamespaces {
		t.Errorf("the hub holds %d namespaces of the cluster after refusing one, want the bound %d (last refusal: %v)", len(have.Items), maxNamespaces, refused)
	}
	if !apierrors.IsForbidden(refused) || !strings.Contains(refused.Error(), fmt.Sprintf("cluster %s already has %d namespaces on the hub", name, maxNamespaces)) {
		t.Fatalf("create %d of flood: want forbidden naming the bound, got %v", flooded, refused)
	}

	// Labels beyond Kubernetes' own bounds, or too many, are refused.
	var cn fv1.ClusterNamespace
	if err := as.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flood-0"}, &cn); err != nil {
		t.Fatal(err)
	}
	many := map[string]string{}
	for i := 0; i < 129; i++ {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for what, labels := range map[string]map[string]string{
		"129 labels":               many,
		"a 64-character value":     {"team": strings.Repeat("v", 64)},
		"a 318-character key":      {strings.Repeat("k", 318): "v"},
		"a 1 MB value (the flood)": {"x": strings.Repeat("v", 1<<20)},
	} {
		c := cn.DeepCopy()
		c.Status.Phase, c.Status.Labels = "Active", labels
		err := as.Status().Update(ctx, c)
		if !apierrors.IsInvalid(err) && !apierrors.IsRequestEntityTooLargeError(err) {
			t.Errorf("status with %s: want invalid, got %v", what, err)
		}
	}
	ok := cn.DeepCopy()
	ok.Status.Phase, ok.Status.Labels = "Active", map[string]string{"kubernetes.io/metadata.name": ok.Name, "team": strings.Repeat("v", 63)}
	if err := as.Status().Update(ctx, ok); err != nil {
		t.Errorf("status with labels Kubernetes allows: %v", err)
	}

	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flood"}}
	if err := as.Create(ctx, lease); !apierrors.IsForbidden(err) {
		t.Errorf("an agent creating a Lease: want forbidden, got %v", err)
	}

	// A detach removes the flood with the cluster's hub namespace.
	if err := attach.Detach(ctx, env.Hub.Client, name, true, time.Minute); err != nil {
		t.Fatal(err)
	}
}
