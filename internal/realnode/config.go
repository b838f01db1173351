package realnode

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// containerdConfig keeps everything of the runtime under the node's
// directory: its root and state, its sockets, the pods' network namespaces
// and the CNI configuration.
func (nd *Node) containerdConfig(c Config) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = %t
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, nd.path("containerd", "root"), nd.path("containerd", "state"), nd.socket(), nd.socket()+".ttrpc",
		nd.path("containerd", "opt"), c.Pause, !hasCapability(capSysResource), CNIDir, nd.path("cni", "net.d"))
}

// capSysResource is the capability to lower a process's OOM score below
// its parent's, which the kubelet asks for its pods (-998 for a sandbox).
const capSysResource = 24

// hasCapability says whether this process has capability c in effect.
func hasCapability(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<c) != 0
		}
	}
	return false
}

// kubeletConfig runs the kubelet on cgroupfs under the node's cgroup
// parent, with x509 and webhook authentication and authorization, and
// without image garbage collection: the images came by import and cannot
// be pulled again.
func (nd *Node) kubeletConfig(c Config) string {
	return jsonString(map[string]any{
		"apiVersion":         "kubelet.config.k8s.io/v1beta1",
		"kind":               "KubeletConfiguration",
		"address":            nd.IP().String(),
		"port":               10250,
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1",
		"healthzPort":        10248,
		"tlsCertFile":        nd.path("pki", "kubelet-serving.crt"),
		"tlsPrivateKeyFile":  nd.path("pki", "kubelet-serving.key"),
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": c.CA.CertFile},
		},
		"authorization":                   map[string]any{"mode": "Webhook"},
		"cgroupDriver":                    "cgroupfs",
		"cgroupRoot":                      nd.CgroupParent(),
		"cgroupsPerQOS":                   true,
		"failCgroupV1":                    false,
		"failSwapOn":                      false,
		"containerRuntimeEndpoint":        "unix://" + nd.socket(),
		"resolvConf":                      "/etc/resolv.conf",
		"clusterDomain":                   "cluster.local",
		"imageGCHighThresholdPercent":     100,
		"imageGCLowThresholdPercent":      99,
		"evictionHard":                    map[string]string{"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"serializeImagePulls":             false,
		"rotateCertificates":              false,
		"enforceNodeAllocatable":          []string{"pods"},
		"nodeStatusUpdateFrequency":       "10s",
		"nodeStatusReportFrequency":       "1m",
		"protectKernelDefaults":           false,
		"shutdownGracePeriod":             "0s",
		"shutdownGracePeriodCriticalPods": "0s",
	})
}

// proxyConfig runs kube-proxy in iptables mode, leaving the host-wide
// conntrack settings alone, and masquerading service traffic so that a
// pod reaching a service served on its own node gets its answer.
func (nd *Node) proxyConfig() string {
	return jsonString(map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"clientConnection":   map[string]any{"kubeconfig": nd.path("kube-proxy.kubeconfig")},
		"hostnameOverride":   nd.Name,
		"clusterCIDR":        nd.Net.ClusterCIDR().String(),
		"mode":               "iptables",
		"conntrack":          map[string]any{"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
		"metricsBindAddress": "127.0.0.1:10249",
		"healthzBindAddress": "127.0.0.1:10256",
		"iptables":           map[string]any{"localhostNodePorts": false, "masqueradeAll": true},
	})
}

// cniConfig is a bridge in the node with the node's pod range.
func (nd *Node) cniConfig() string {
	return jsonString(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "flotilla",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": nd.Net.PodCIDR(nd.Index).String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": nd.path("cni", "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	})
}
