package realnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"flotilla.dev/flotilla/internal/buildcache"
)

// networkFile records a cluster's network in its directory.
const networkFile = "network.json"

// Allocate returns the network of the cluster whose directory is owner,
// choosing a free one the first time. The choice is recorded on the host
// (one file per index, naming its owner) so that two clusters never
// share one; an index whose owner's directory is gone is free again.
func Allocate(owner string) (Network, error) {
	n, ok, err := readNetwork(owner)
	if ok || err != nil {
		return n, err
	}
	reg, err := registry()
	if err != nil {
		return n, err
	}
	unlock, err := buildcache.Lock(filepath.Join(reg, ".lock"))
	if err != nil {
		return n, err
	}
	defer unlock()
	for i := range maxNetworks {
		rec := filepath.Join(reg, strconv.Itoa(i))
		if b, err := os.ReadFile(rec); err == nil {
			if _, err := os.Stat(string(b)); err == nil {
				continue
			}
		}
		n.Index = i
		// What a cluster whose directory was removed left of its nodes.
		if err := removeNodes(n); err != nil {
			return n, err
		}
		if err := os.WriteFile(rec, []byte(owner), 0o644); err != nil {
			return n, err
		}
		b, _ := json.Marshal(n)
		return n, os.WriteFile(filepath.Join(owner, networkFile), b, 0o644)
	}
	return n, fmt.Errorf("all %d node networks of this host are taken by clusters with real nodes; delete one", maxNetworks)
}

// registry holds, per network index in use on this host, its owner's
// directory: beside the nodes' state, the same for every user and process.
func registry() (string, error) {
	dir := filepath.Join(filepath.Dir(StateRoot), "networks")
	return dir, os.MkdirAll(dir, 0o755)
}

// readNetwork reads the network recorded in owner; ok is false if there
// is none.
func readNetwork(owner string) (n Network, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(owner, networkFile))
	if errors.Is(err, os.ErrNotExist) {
		return n, false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &n)
	}
	return n, err == nil, err
}

// HasNetwork says whether the cluster whose directory is owner has a node
// network.
func HasNetwork(owner string) bool {
	_, ok, _ := readNetwork(owner)
	return ok
}

// Release frees owner's network on the host and removes its bridge.
func Release(owner string) error {
	n, ok, err := readNetwork(owner)
	if !ok {
		return err
	}
	errs := []error{n.Down()}
	if reg, err := registry(); err == nil {
		rec := filepath.Join(reg, strconv.Itoa(n.Index))
		if b, err := os.ReadFile(rec); err == nil && string(b) == owner {
			errs = append(errs, os.Remove(rec))
		}
	}
	return errors.Join(errs...)
}

// Up makes the host bridge with the gateway address, and lets the host
// route between the nodes' pod ranges.
func (n Network) Up() error {
	br := n.Bridge()
	if !linkExists(br) {
		if err := ip("link", "add", br, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := ip("addr", "replace", n.Gateway().String()+"/24", "dev", br); err != nil {
		return err
	}
	if err := ip("link", "set", br, "up"); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}

// Down removes the host bridge.
func (n Network) Down() error {
	if !linkExists(n.Bridge()) {
		return nil
	}
	return ip("link", "del", n.Bridge())
}

// netUp puts the node on its network: its namespace, a veth from the
// bridge to its eth0, its address and default route through the host,
// forwarding for its pods, and the host's route to its pod range.
func (nd *Node) netUp() error {
	ns, host := nd.NetNS(), nd.vethHost()
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
	}
	if !linkExists(host) {
		peer := "flp" + strings.TrimPrefix(host, "flv")
		if err := ip("link", "add", host, "type", "veth", "peer", "name", peer); err != nil {
			return err
		}
		steps := [][]string{
			{"link", "set", peer, "netns", ns},
			{"-n", ns, "link", "set", peer, "name", "eth0"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				// Half made: removed, so that the next try starts over.
				ip("link", "del", host)
				return err
			}
		}
	}
	steps := [][]string{
		{"link", "set", host, "master", nd.Net.Bridge()},
		{"link", "set", host, "up"},
		{"-n", ns, "addr", "replace", nd.IP().String() + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "replace", "default", "via", nd.Net.Gateway().String()},
		{"route", "replace", nd.Net.PodCIDR(nd.Index).String(), "via", nd.IP().String()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nsSysctl(ns, "net.ipv4.ip_forward", "1")
}

// netDown removes the host's route to the node's pods and the node's
// namespace (and with it both ends of its veth).
func (nd *Node) netDown() error {
	ip("route", "del", nd.Net.PodCIDR(nd.Index).String())
	if _, err := os.Stat(filepath.Join("/run/netns", nd.NetNS())); err != nil {
		return nil
	}
	return ip("netns", "del", nd.NetNS())
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func nsSysctl(ns, key, value string) error {
	return ip("netns", "exec", ns, "sysctl", "-qw", key+"="+value)
}
