package bench

import (
	"fmt"
	"io"
	"time"

	"flotilla.dev/flotilla/internal/procs"
)

// lifecycleResult is what bench lifecycle measured.
type lifecycleResult struct {
	nodes, scaleTo     int
	create             time.Duration // newer version, to Healthy on the hub
	scaleUp, scaleDown time.Duration
	delete             time.Duration
	// upgrade[0] with one control-plane member, [1] with three.
	upgrade [2]upgradeResult
	// idle[0] a cluster at the older version, [1] at the newer.
	idle [2]procs.Memory
}

func printLifecycle(w io.Writer, r *lifecycleResult) {
	s := func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(w, "local provider, clusters of %d simulated nodes:\n", r.nodes)
	fmt.Fprintf(w, "  create → Healthy on the hub, %s: %s (target ≤ 10 s warm)\n", lifecycleNewer, s(r.create))
	fmt.Fprintf(w, "  scale %d → %d: %s; %d → %d: %s\n", r.nodes, r.scaleTo, s(r.scaleUp), r.scaleTo, r.nodes, s(r.scaleDown))
	fmt.Fprintf(w, "  delete: %s\n", s(r.delete))
	for i, members := range []int{1, 3} {
		u := r.upgrade[i]
		fmt.Fprintf(w, "  upgrade %s → %s, %d control-plane member(s), Deployment of 6 under a PDB: %s; GETs at 10/s that succeeded: %d of %d (%.1f %%; %d after the apiserver's Retry-After)",
			lifecycleOlder, lifecycleNewer, members, s(u.took), u.ok, u.gets, 100*float64(u.ok)/float64(max(u.gets, 1)), u.retried)
		if members == 3 {
			fmt.Fprint(w, " (target 100 %)")
		}
		fmt.Fprintln(w)
		if u.firstFailure != "" {
			fmt.Fprintf(w, "    first failed GET: %s\n", u.firstFailure)
		}
	}
	for i, v := range []string{lifecycleOlder, lifecycleNewer} {
		fmt.Fprintf(w, "  idle cluster at %s (etcd, apiserver, controllers, scheduler, agent, supervisor): PSS %.0f MiB, RSS %.0f MiB\n", v, mib(r.idle[i].PSS), mib(r.idle[i].RSS))
	}
}
