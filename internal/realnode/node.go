package realnode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/sandbox"
)

// StateRoot holds every real node's state, under a short path: the
// runtime's and kubelet's sockets must fit in 108 bytes.
const StateRoot = "/var/lib/flotilla/nodes"

// Config is what a node needs from its cluster.
type Config struct {
	// CA is the cluster's CA: it signs the node's certificates, and the
	// kubelet trusts the clients it signed.
	CA *pki.CA
	// Server is the apiserver's address as nodes reach it.
	Server string
	// Pause is the pod sandbox image.
	Pause string
	// Bin runs the kubelet and kube-proxy of the cluster's version
	// (BIN kubelet FLAGS).
	Bin string
	// Sandbox, if set, gives the node the runtime class of package
	// sandbox: pods under their own kernel.
	Sandbox *sandbox.Binaries
}

// Cmd is a process of the node.
type Cmd struct {
	Name string
	Bin  string
	Args []string
	// Env is added to the process's environment.
	Env []string
}

// StateDir is node's state directory.
func StateDir(net Network, index int) string {
	return filepath.Join(StateRoot, fmt.Sprintf("%d-%d", net.Index, index))
}

// Prepare puts the node on its network and writes its certificates and
// configuration; it can be run again.
func (nd *Node) Prepare(c Config) error {
	for _, d := range []string{"pki", "cni/net.d", "kubelet", "containerd"} {
		if err := os.MkdirAll(nd.path(d), 0o700); err != nil {
			return err
		}
	}
	if err := makeGroups(nd.CgroupParent()); err != nil {
		return err
	}
	if err := nd.netUp(); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	pkiDir := nd.path("pki")
	kubelet, err := c.CA.Client(pkiDir, "kubelet", "system:node:"+nd.Name, "system:nodes")
	if err != nil {
		return err
	}
	proxy, err := c.CA.Client(pkiDir, "kube-proxy", "system:kube-proxy")
	if err != nil {
		return err
	}
	if _, err := c.CA.Serving(pkiDir, "kubelet-serving", []string{nd.IP().String(), nd.Name}); err != nil {
		return err
	}
	if err := kubeconfig.Write(nd.path("kubelet.kubeconfig"), nd.Cluster, c.Server, c.CA.CertPEM(), kubelet.CertFile, kubelet.KeyFile); err != nil {
		return err
	}
	if err := kubeconfig.Write(nd.path("kube-proxy.kubeconfig"), nd.Cluster, c.Server, c.CA.CertPEM(), proxy.CertFile, proxy.KeyFile); err != nil {
		return err
	}
	runtimeConfig := nd.containerdConfig(c)
	if c.Sandbox != nil {
		sb := sandbox.Config(nd.path("gvisor"), *c.Sandbox, c.Sandbox.Platform())
		if err := sb.Write(); err != nil {
			return err
		}
		runtimeConfig += "\n" + sb.Containerd
	}
	files := map[string]string{
		"containerd.toml":                runtimeConfig,
		"kubelet.yaml":                   nd.kubeletConfig(c),
		"kube-proxy.yaml":                nd.proxyConfig(),
		"cni/net.d/10-flotilla.conflist": nd.cniConfig(),
	}
	for name, content := range files {
		if err := os.WriteFile(nd.path(name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// socket is the node runtime's CRI socket.
func (nd *Node) socket() string { return nd.path("containerd.sock") }

// inNetNS runs bin with args in the node's network namespace (and only
// there: the mounts stay the host's, which the runtime and the kubelet
// must share).
func (nd *Node) inNetNS(name, bin string, args ...string) Cmd {
	return Cmd{Name: name, Bin: "nsenter", Args: append([]string{"--net=/run/netns/" + nd.NetNS(), "--", bin}, args...)}
}

// Runtime is the node's containerd; with a sandbox, it finds the
// sandbox's shim on its PATH.
func (nd *Node) Runtime(c Config) Cmd {
	cmd := nd.inNetNS("containerd", "containerd", "--config", nd.path("containerd.toml"))
	if c.Sandbox != nil {
		env := c.Sandbox.Env(os.Environ())
		cmd.Env = env[len(env)-1:] // its PATH
	}
	return cmd
}

// Kubelet is the node's kubelet, registering the node with labels and
// taints.
func (nd *Node) Kubelet(c Config, labels map[string]string, taints []corev1.Taint) Cmd {
	kv := []string{Label + "=true"}
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	var ts []string
	for _, t := range taints {
		ts = append(ts, t.ToString())
	}
	return nd.inNetNS("kubelet", c.Bin, "kubelet",
		"--node-labels="+strings.Join(kv, ","),
		"--register-with-taints="+strings.Join(ts, ","),
		"--config="+nd.path("kubelet.yaml"),
		"--kubeconfig="+nd.path("kubelet.kubeconfig"),
		"--hostname-override="+nd.Name,
		"--node-ip="+nd.IP().String(),
		"--root-dir="+nd.path("kubelet"),
		"--cert-dir="+nd.path("pki"),
	)
}

// Label marks real nodes.
const Label = "flotilla.dev/real-node"

// Proxy is the node's kube-proxy.
func (nd *Node) Proxy(c Config) Cmd {
	return nd.inNetNS("kube-proxy", c.Bin, "kube-proxy", "--config="+nd.path("kube-proxy.yaml"))
}

// ctr runs containerd's client against the node's runtime.
func (nd *Node) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", nd.socket(), "--namespace", "k8s.io"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RuntimeReady says whether the node's runtime answers.
func (nd *Node) RuntimeReady(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return nd.ctr(ctx, "version") == nil
}

// Import loads image archives into the node's runtime.
func (nd *Node) Import(ctx context.Context, archives ...string) error {
	for _, a := range archives {
		if err := nd.ctr(ctx, "images", "import", "--no-unpack=false", a); err != nil {
			return err
		}
	}
	return nil
}

func jsonString(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
