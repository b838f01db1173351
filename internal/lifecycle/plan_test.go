package lifecycle

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/nodesim"
)

func spec(version string, pools ...fv1.NodePool) *fv1.ClusterLifecycle {
	return &fv1.ClusterLifecycle{Provider: fv1.ProviderLocal, Version: version, ControlPlane: fv1.ControlPlane{Replicas: 3}, NodePools: pools}
}

func pool(name string, n int32) fv1.NodePool {
	return fv1.NodePool{Name: name, Replicas: n, CPU: resource.MustParse("2"), Memory: resource.MustParse("4Gi")}
}

func names(nodes []nodesim.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func TestInitialHasEveryMemberAndNodeAtTheVersion(t *testing.T) {
	d := initial("c", spec("v1.36.3", pool("a", 2), pool("b-x", 1)))
	if !slices.Equal(d.ControlPlane, []string{"v1.36.3", "v1.36.3", "v1.36.3"}) {
		t.Errorf("control plane %v", d.ControlPlane)
	}
	if got, want := names(d.Nodes), []string{"c-a-1", "c-a-2", "c-b-x-1"}; !slices.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	seen := map[int]bool{}
	for _, n := range d.Nodes {
		if n.Version != "v1.36.3" || seen[n.Index] || n.Labels[PoolLabel] == "" {
			t.Errorf("node %+v: wrong version, a reused index, or no pool label", n)
		}
		seen[n.Index] = true
	}
	if pool, ord := poolOf("c", "c-b-x-1"); pool != "b-x" || ord != 1 {
		t.Errorf("poolOf = %s %d", pool, ord)
	}
}

func TestGrowFillsGapsAndSurplusTakesHighestOrdinals(t *testing.T) {
	s := spec("v1.37.2", pool("a", 5))
	d := initial("c", spec("v1.37.2", pool("a", 3)))
	// Node 2 was removed by hand from the desired state: grow fills the gap first.
	nodes := without(d.Nodes, []string{"c-a-2"})
	grown, added := grow("c", s, nodes)
	if added != 3 || !slices.Equal(names(grown), []string{"c-a-1", "c-a-3", "c-a-2", "c-a-4", "c-a-5"}) {
		t.Fatalf("grow added %d: %v", added, names(grown))
	}
	if _, again := grow("c", s, grown); again != 0 {
		t.Errorf("grow of a full pool added %d", again)
	}
	if got := surplus("c", spec("v1.37.2", pool("a", 2)), grown); !slices.Equal(got, []string{"c-a-3", "c-a-4", "c-a-5"}) {
		t.Errorf("surplus %v", got)
	}
	// A pool dropped from the spec loses every node.
	if got := surplus("c", spec("v1.37.2", pool("b", 1)), grown[:2]); !slices.Equal(got, []string{"c-a-1", "c-a-3"}) {
		t.Errorf("surplus of a dropped pool %v", got)
	}
}

func TestUpgradeOrderControlPlaneThenNodesByName(t *testing.T) {
	d := initial("c", spec("v1.36.3", pool("a", 2)))
	if i := nextMember(d, "v1.37.2"); i != 0 {
		t.Fatalf("nextMember = %d", i)
	}
	d.ControlPlane = []string{"v1.37.2", "v1.37.2", "v1.37.2"}
	if i := nextMember(d, "v1.37.2"); i != -1 {
		t.Fatalf("nextMember of an upgraded control plane = %d", i)
	}
	d.Nodes[0], d.Nodes[1] = d.Nodes[1], d.Nodes[0]
	if i := nextNode(d, "v1.37.2"); d.Nodes[i].Name != "c-a-1" {
		t.Fatalf("nextNode = %s", d.Nodes[i].Name)
	}
}

func TestPoolStatusReportsOldestVersionAndCounts(t *testing.T) {
	s := spec("v1.37.2", pool("a", 3))
	d := localplane.Desired{Nodes: initial("c", s).Nodes}
	reported := map[string]nodeReport{
		"c-a-1": {version: "v1.37.2", ready: true},
		"c-a-2": {version: "v1.36.3", ready: true},
		"c-a-3": {version: "v1.37.2", ready: false},
	}
	got := pools("c", s, d, reported)
	want := fv1.NodePoolStatus{Name: "a", Version: "v1.36.3", Replicas: 3, Ready: 2, Updated: 2}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("pools = %+v, want %+v", got, want)
	}
	if n := upgraded(d, reported, "v1.37.2"); n != 2 {
		t.Errorf("upgraded = %d", n)
	}
}
