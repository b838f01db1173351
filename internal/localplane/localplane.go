// Package localplane runs one local cluster of the local lifecycle
// provider: a supervisor process per cluster that keeps the cluster's
// components running as its directory's desired-state file says (etcd and
// kube-apiserver members, the controller manager and scheduler, each at
// its version; simulated nodes, each at its kubelet version; the cluster's
// agent) and writes what runs into a status file.
//
// The hub's provider decides; the supervisor only carries out. Upgrading a
// member is a new version in the file: the supervisor restarts that
// member's apiserver from the version's binary on the same etcd data.
// Draining a node is the hub's work, through the cluster's own API; the
// file then drops the node or changes its version.
//
// A supervisor outlives the hub that started it (a crashed hub finds it
// again through the directory's lock), and its components die with it.
package localplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"flotilla.dev/flotilla/internal/nodesim"
)

// Desired is what a cluster's supervisor keeps running.
type Desired struct {
	// Name of the cluster.
	Name string `json:"name"`
	// ControlPlane is the Kubernetes version of each control-plane member
	// (etcd and kube-apiserver); one or three. The controller manager and
	// scheduler run the oldest of them, as the version skew policy wants.
	ControlPlane []string `json:"controlPlane"`
	// Nodes are the simulated nodes.
	Nodes []nodesim.Node `json:"nodes"`
	// AgentBootstrap, once set, is the bootstrap kubeconfig with which the
	// supervisor starts the cluster's agent.
	AgentBootstrap string `json:"agentBootstrap,omitempty"`
	// AgentArgs are extra flags of the agent.
	AgentArgs []string `json:"agentArgs,omitempty"`
}

// Status is what a supervisor runs, as it last saw it.
type Status struct {
	// PID of the supervisor.
	PID int `json:"pid"`
	// Endpoint is the apiserver's address (a local balancer in front of
	// the members when there are several).
	Endpoint string `json:"endpoint,omitempty"`
	// Components, in order: etcd-N, kube-apiserver-N,
	// kube-controller-manager, kube-scheduler, agent.
	Components []Component `json:"components"`
	// Nodes is how many simulated nodes are registered as Desired says.
	NodesSet bool `json:"nodesSet"`
	// RealNodes are the real nodes' components (NODE/containerd,
	// NODE/kubelet, NODE/kube-proxy).
	RealNodes []Component `json:"realNodes,omitempty"`
}

// Component is one process the supervisor runs.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Ready   bool   `json:"ready"`
	// Failed says it keeps exiting at start; Message says why and where
	// its log is.
	Failed  bool   `json:"failed,omitempty"`
	Message string `json:"message,omitempty"`
}

// Files of a cluster's directory.
const (
	desiredFile = "desired.json"
	statusFile  = "status.json"
)

// Kubeconfig is the cluster's admin kubeconfig in dir.
func Kubeconfig(dir string) string { return filepath.Join(dir, "kubeconfig") }

// WriteDesired replaces dir's desired state with d.
func WriteDesired(dir string, d Desired) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, desiredFile), d)
}

// ReadDesired reads dir's desired state.
func ReadDesired(dir string) (Desired, error) {
	var d Desired
	err := readJSON(filepath.Join(dir, desiredFile), &d)
	return d, err
}

// ReadStatus reads what dir's supervisor last wrote; ok is false if it
// wrote nothing yet.
func ReadStatus(dir string) (s Status, ok bool, err error) {
	err = readJSON(filepath.Join(dir, statusFile), &s)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	return s, err == nil, err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not readable: %w", path, err)
	}
	return nil
}
