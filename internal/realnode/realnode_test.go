package realnode

import (
	"strings"
	"testing"
)

func TestAddressesOfANetwork(t *testing.T) {
	n := Network{Index: 7}
	nd, err := NewNode("c", "c-real-3", 3, n, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		n.Bridge():               "flnet7",
		n.Gateway().String():     "172.30.7.1",
		nd.IP().String():         "172.30.7.5",
		n.PodCIDR(3).String():    "10.135.3.0/24",
		n.ClusterCIDR().String(): "10.135.0.0/16",
		nd.NetNS():               "flotilla-7-3",
		nd.vethHost():            "flv7n3",
		nd.CgroupParent():        "/flotilla/7-3",
		StateDir(n, 3):           "/var/lib/flotilla/nodes/7-3",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if len(nd.vethHost()) > 15 {
		t.Errorf("link name %q is longer than the kernel allows", nd.vethHost())
	}
	if _, err := NewNode("c", "x", maxNodes, n, t.TempDir()); err == nil {
		t.Error("a node beyond the network's addresses was accepted")
	}
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Check()
	if err == nil {
		t.Fatal("a host without containerd, runc or iptables on PATH passed")
	}
	for _, want := range []string{"containerd (package containerd)", "runc (package runc)", "iptables (package iptables)", "apt-get install"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
