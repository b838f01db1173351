package bench

import (
	"fmt"
	"io"
	"net/http"

	"flotilla.dev/flotilla/internal/datadir"
)

// hubMetrics sums the named metrics of the hub's /metrics (on its metrics
// port, kept in its data dir).
func hubMetrics(hubDir string, names ...string) (map[string]float64, error) {
	port, err := datadir.RecordedPort(hubDir, "metrics")
	if err != nil {
		return nil, err
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("hub answered %s", resp.Status)
	}
	return sumMetrics(resp.Body, names...)
}

// hubStreams is the number of agent streams the hub holds open.
func hubStreams(hubDir string) (int, error) {
	sums, err := hubMetrics(hubDir, "flotilla_hub_agent_streams")
	return int(sums["flotilla_hub_agent_streams"]), err
}

// goHeap is where the hub's Go heap is, in bytes, from the runtime's
// metrics: what a PSS figure does not tell apart.
type goHeap struct {
	// Live is the heap marked live by the last collection.
	Live int64
	// Unused is memory in spans that hold live objects but is not
	// allocated (fragmentation); Free is in free spans, not returned to
	// the system.
	Unused, Free int64
	Stacks       int64
}

// hubHeap reads the hub's goHeap; zero if its metrics cannot be read.
func hubHeap(hubDir string) goHeap {
	const (
		live   = "go_gc_heap_live_bytes"
		unused = "go_memory_classes_heap_unused_bytes"
		free   = "go_memory_classes_heap_free_bytes"
		stacks = "go_memory_classes_heap_stacks_bytes"
	)
	m, err := hubMetrics(hubDir, live, unused, free, stacks)
	if err != nil {
		return goHeap{}
	}
	return goHeap{Live: int64(m[live]), Unused: int64(m[unused]), Free: int64(m[free]), Stacks: int64(m[stacks])}
}

// kbPerCluster is what grew from idle to loaded (bytes), in KB per healthy
// cluster.
func (r *fleetResult) kbPerCluster(loaded, idle int64) float64 {
	return float64(loaded-idle) / 1024 / float64(r.healthy)
}

// printMemory splits the hub's PSS per cluster by where it grew: the hub
// process's anonymous memory (Go heap, stacks), its mapped files (etcd's
// database; the binary's code does not grow) and its child processes
// (the controller manager).
func printMemory(out io.Writer, r *fleetResult) {
	if r.loadedHub.PSS == 0 || r.idleHub.PSS == 0 || r.healthy == 0 {
		return
	}
	anon := r.kbPerCluster(r.loadedHub.PSS-r.loadedHub.FilePSS, r.idleHub.PSS-r.idleHub.FilePSS)
	files := r.kbPerCluster(r.loadedHub.FilePSS, r.idleHub.FilePSS)
	children := r.kbPerCluster(r.loaded.PSS-r.loadedHub.PSS, r.idle.PSS-r.idleHub.PSS)
	fmt.Fprintf(out, "  hub PSS per cluster: %.0f KB anonymous (Go heap and stacks), %.0f KB in mapped files (etcd's database), %.0f KB in the controller manager\n",
		anon, files, children)
}

// printHeap says what the hub's PSS per cluster is made of: the live heap
// per cluster, and the heap the runtime holds beyond it.
func printHeap(out io.Writer, r *fleetResult) {
	idle, loaded := r.idleHeap, r.loadedHeap
	if idle.Live == 0 || loaded.Live == 0 || r.healthy == 0 {
		return
	}
	fmt.Fprintf(out, "  hub Go heap: live %.0f MiB idle, %.0f MiB in the window (%.0f KB per cluster); in the window %.0f MiB unused in spans, %.0f MiB free and not returned, stacks %.0f MiB\n",
		mib(idle.Live), mib(loaded.Live), r.kbPerCluster(loaded.Live, idle.Live), mib(loaded.Unused), mib(loaded.Free), mib(loaded.Stacks))
}
