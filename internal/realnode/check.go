package realnode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CNIDir is where the CNI plugins are found (Debian's
// containernetworking-plugins).
const CNIDir = "/usr/lib/cni"

// Check says what this host lacks to run real nodes, or nil: root, a
// cgroup hierarchy, and the programs they run (Debian packages containerd,
// runc, containernetworking-plugins, iptables, iproute2 and util-linux).
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (real nodes make network namespaces, links, cgroups and mounts)")
	}
	if _, err := processRoot(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, p := range []struct{ bin, pkg string }{
		{"containerd", "containerd"}, {"containerd-shim-runc-v2", "containerd"}, {"ctr", "containerd"},
		{"runc", "runc"}, {"iptables", "iptables"}, {"ip", "iproute2"}, {"nsenter", "util-linux"},
	} {
		if _, err := exec.LookPath(p.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", p.bin, p.pkg))
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(CNIDir, plugin)); err != nil {
			missing = append(missing, fmt.Sprintf("the CNI plugin %s in %s (package containernetworking-plugins)", plugin, CNIDir))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("this host cannot run real nodes; it lacks: " + strings.Join(missing, "; ") +
		". Install what is missing (apt-get install containerd runc containernetworking-plugins iptables) or use simulated nodes")
}
