package lifecycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/nodesim"
)

// maxNodes is how many nodes a local cluster has at most: each takes one
// of 250 addresses.
const maxNodes = 250

// initial is a new local cluster's desired state: every member and node
// at the spec's version.
func initial(name string, spec *fv1.ClusterLifecycle) localplane.Desired {
	d := localplane.Desired{Name: name}
	for range max(spec.ControlPlane.Replicas, 1) {
		d.ControlPlane = append(d.ControlPlane, spec.Version)
	}
	d.Nodes, _ = grow(name, spec, nil)
	return d
}

// nodeName is the name of node ordinal of pool in cluster.
func nodeName(cluster, pool string, ordinal int) string {
	return cluster + "-" + pool + "-" + strconv.Itoa(ordinal)
}

// poolOf is the pool of a node named by nodeName, and its ordinal.
func poolOf(cluster, node string) (pool string, ordinal int) {
	rest := strings.TrimPrefix(node, cluster+"-")
	i := strings.LastIndex(rest, "-")
	if i < 0 {
		return "", 0
	}
	ordinal, _ = strconv.Atoi(rest[i+1:])
	return rest[:i], ordinal
}

// grow adds to nodes those each pool lacks, at the spec's version, with the
// lowest free ordinals and addresses; added says how many.
func grow(cluster string, spec *fv1.ClusterLifecycle, nodes []nodesim.Node) (out []nodesim.Node, added int) {
	out = slices.Clone(nodes)
	used := map[int]bool{}
	for _, n := range nodes {
		used[n.Index] = true
	}
	for _, p := range spec.NodePools {
		have := map[int]bool{}
		for _, n := range nodes {
			if pool, ord := poolOf(cluster, n.Name); pool == p.Name {
				have[ord] = true
			}
		}
		for ord := 1; len(have) < int(p.Replicas) && len(out) < maxNodes; ord++ {
			if have[ord] {
				continue
			}
			idx := 1
			for used[idx] {
				idx++
			}
			used[idx], have[ord] = true, true
			out = append(out, nodesim.Node{
				Name: nodeName(cluster, p.Name, ord), Index: idx, Version: spec.Version,
				CPU: p.CPU, Memory: p.Memory, Labels: poolLabels(p), Taints: p.Taints, Real: p.Real,
			})
			added++
		}
	}
	return out, added
}

// PoolLabel names a node's pool.
const PoolLabel = "flotilla.dev/node-pool"

func poolLabels(p fv1.NodePool) map[string]string {
	l := map[string]string{PoolLabel: p.Name}
	for k, v := range p.Labels {
		l[k] = v
	}
	return l
}

// surplus lists the nodes to remove: those of pools the spec no longer has,
// and each pool's highest ordinals beyond its replicas.
func surplus(cluster string, spec *fv1.ClusterLifecycle, nodes []nodesim.Node) []string {
	want := map[string]int{}
	for _, p := range spec.NodePools {
		want[p.Name] = int(p.Replicas)
	}
	byPool := map[string][]int{}
	for _, n := range nodes {
		pool, ord := poolOf(cluster, n.Name)
		byPool[pool] = append(byPool[pool], ord)
	}
	var out []string
	for pool, ords := range byPool {
		slices.Sort(ords)
		keep := want[pool]
		for _, ord := range ords[min(keep, len(ords)):] {
			out = append(out, nodeName(cluster, pool, ord))
		}
	}
	slices.Sort(out)
	return out
}

// without is nodes less those named.
func without(nodes []nodesim.Node, names []string) []nodesim.Node {
	return slices.DeleteFunc(slices.Clone(nodes), func(n nodesim.Node) bool { return slices.Contains(names, n.Name) })
}

// nextMember is the first control-plane member not at version, or -1.
func nextMember(d localplane.Desired, version string) int {
	return slices.IndexFunc(d.ControlPlane, func(v string) bool { return v != version })
}

// nextNode is the first node (by name) whose desired version is not
// version, or -1: nodes are upgraded one at a time, in a stable order.
func nextNode(d localplane.Desired, version string) int {
	best := -1
	for i, n := range d.Nodes {
		if n.Version != version && (best < 0 || n.Name < d.Nodes[best].Name) {
			best = i
		}
	}
	return best
}

// pools is each pool's status from the nodes as desired and as the
// cluster reports them (name → kubelet version, "" if not Ready).
func pools(cluster string, spec *fv1.ClusterLifecycle, d localplane.Desired, reported map[string]nodeReport) []fv1.NodePoolStatus {
	var out []fv1.NodePoolStatus
	names := []string{}
	for _, p := range spec.NodePools {
		names = append(names, p.Name)
	}
	for _, n := range d.Nodes {
		if pool, _ := poolOf(cluster, n.Name); !slices.Contains(names, pool) {
			names = append(names, pool)
		}
	}
	for _, pool := range names {
		st := fv1.NodePoolStatus{Name: pool}
		for _, n := range d.Nodes {
			if p, _ := poolOf(cluster, n.Name); p != pool {
				continue
			}
			st.Replicas++
			r, ok := reported[n.Name]
			if !ok {
				continue
			}
			if r.ready {
				st.Ready++
			}
			if r.version == spec.Version {
				st.Updated++
			}
			if st.Version == "" || kubebin.Compare(r.version, st.Version) < 0 {
				st.Version = r.version
			}
		}
		out = append(out, st)
	}
	return out
}

// nodeReport is a node as the cluster reports it.
type nodeReport struct {
	version       string
	ready         bool
	unschedulable bool
	cordonedByUs  bool
}

// upgraded counts the nodes reporting version.
func upgraded(d localplane.Desired, reported map[string]nodeReport, version string) int {
	n := 0
	for _, node := range d.Nodes {
		if reported[node.Name].version == version {
			n++
		}
	}
	return n
}

func progress(done, total int, what string) string {
	return fmt.Sprintf("%d/%d %s", done, total, what)
}
