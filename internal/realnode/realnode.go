// Package realnode runs real Kubernetes nodes for local clusters: per node
// a network namespace on its cluster's node network, a containerd of its
// own (root, state, socket, CNI configuration and pod network namespaces
// under the node's directory), and the kubelet and kube-proxy of the
// cluster's version, whose pods live under the node's own cgroup parent.
//
// The cluster's network is a host bridge with the control plane's address
// on it (172.30.N.1/24; the apiserver serves there for the nodes and for
// pods); node I is 172.30.N.(2+I) and its pods are 10.(128+N).I.0/24 on a
// bridge inside the node, routed to from the host and from the other nodes.
//
// It needs root on a Linux host: network namespaces, veth and bridge
// links, cgroups (v1 or v2) and overlay mounts. Check says what is missing.
package realnode

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
)

// Network is one cluster's node network.
type Network struct {
	// Index picks the cluster's address ranges; unique on the host.
	Index int `json:"index"`
}

// Bridge is the host bridge of the network.
func (n Network) Bridge() string { return "flnet" + strconv.Itoa(n.Index) }

// Gateway is the host's address on the network, where the control plane
// serves the nodes.
func (n Network) Gateway() netip.Addr { return netip.AddrFrom4([4]byte{172, 30, byte(n.Index), 1}) }

// NodeIP is node i's address.
func (n Network) NodeIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 30, byte(n.Index), byte(2 + i)})
}

// PodCIDR is node i's pod range.
func (n Network) PodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + n.Index), byte(i), 0}), 24)
}

// ClusterCIDR holds every pod range of the cluster.
func (n Network) ClusterCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + n.Index), 0, 0}), 16)
}

// maxNetworks bounds Index: the pod ranges are 10.128.0.0/9.
const maxNetworks = 128

// maxNodes bounds node numbers (addresses .2 to .252).
const maxNodes = 251

// Node is one real node of a cluster.
type Node struct {
	// Cluster and Name name the node; Name is its Kubernetes node name.
	Cluster, Name string
	// Index is the node's number on its network.
	Index int
	// Net is the cluster's node network.
	Net Network
	// Dir keeps the node's state: runtime, kubelet, logs.
	Dir string
}

// NewNode describes node index of cluster on net, keeping its state in dir.
func NewNode(cluster, name string, index int, net Network, dir string) (*Node, error) {
	if index < 0 || index >= maxNodes {
		return nil, fmt.Errorf("real node number %d is outside 0 to %d", index, maxNodes-1)
	}
	return &Node{Cluster: cluster, Name: name, Index: index, Net: net, Dir: dir}, nil
}

// NetNS is the node's network namespace.
func (n *Node) NetNS() string {
	return "flotilla-" + strconv.Itoa(n.Net.Index) + "-" + strconv.Itoa(n.Index)
}

// IP is the node's address.
func (n *Node) IP() netip.Addr { return n.Net.NodeIP(n.Index) }

// CgroupParent is the cgroup under which the node's runtime and pods run.
func (n *Node) CgroupParent() string {
	return "/flotilla/" + strconv.Itoa(n.Net.Index) + "-" + strconv.Itoa(n.Index)
}

// path joins elem to the node's directory.
func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }

// vethHost is the host end of the node's link to the bridge.
func (n *Node) vethHost() string {
	return "flv" + strconv.Itoa(n.Net.Index) + "n" + strconv.Itoa(n.Index)
}
