package bench

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

func printRealNode(w io.Writer, r *realNodeResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cluster with one real node, create → Healthy\t%v\n", r.create.Round(100*time.Millisecond))
	fmt.Fprintf(tw, "real node added, scale → node Ready\t%v\n", r.nodeReady.Round(100*time.Millisecond))
	fmt.Fprintf(tw, "real node memory (kubelet, containerd, kube-proxy)\tPSS %s, RSS %s\n", mibs(r.nodeMemory.PSS), mibs(r.nodeMemory.RSS))
	for _, c := range r.classes {
		s := slices.Clone(c.starts)
		slices.Sort(s)
		fmt.Fprintf(tw, "pod create → Running, runtime class %s (%d pods)\tp50 %v, p90 %v, max %v\n", c.class, len(s),
			pct(s, 50).Round(time.Millisecond), pct(s, 90).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
		fmt.Fprintf(tw, "  one idle pod of class %s: its processes / its shim\tPSS %s / %s (RSS %s / %s)\n", c.class,
			mibs(c.pod.PSS), mibs(c.shim.PSS), mibs(c.pod.RSS), mibs(c.shim.RSS))
		fmt.Fprintf(tw, "  kernel the pod sees / the host's\t%s / %s\n", c.podKernel, c.hostKernel)
	}
	tw.Flush()
}

func mibs(b int64) string { return fmt.Sprintf("%.1f MiB", mib(b)) }
