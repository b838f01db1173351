package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// proxyResult is what bench proxy measured; what a step did not get to
// measure is empty, and printed as "-".
type proxyResult struct {
	pods, pages      int
	list, get, watch [2][]time.Duration // [direct, viaHub], each sorted
	clients          int
	window           time.Duration
	rps              [2]float64
	failed           [2]int

	tunnels             int                // simulated clusters
	registered          time.Duration      // to attach them all, until Healthy
	opened              []time.Duration    // GET /version answered 200, each opening a tunnel; sorted
	openErr             string             // the first that did not
	pssBefore, pssAfter [2]int64           // the hub's, two reads 5 s apart
	goBefore, goAfter   map[string]float64 // goMetrics, read after each PSS

	took time.Duration
}

func printProxy(out io.Writer, r *proxyResult) {
	fmt.Fprintln(out, "\nlatency, each request made direct (the cluster's apiserver, its admin) and through the hub (its admin, the access point), in turn:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tEACH PATH\tDIRECT p50 / p99\tHUB p50 / p99\tHUB/DIRECT p50 / p99\tADDED p99\tTARGET\t")
	latencyRow(tw, fmt.Sprintf("kubectl get pods (%d pods, %s)", r.pods, plural(r.pages, "page")), r.list, true, "hub/direct ≤ 1.2×")
	latencyRow(tw, "get one pod", r.get, true, "added ≤ 2 ms")
	// A watch event may come before the create's response: a ratio of
	// times near or below zero says nothing.
	latencyRow(tw, "watch: create → ADDED", r.watch, false, "added ≤ 5 ms")
	tw.Flush()
	if len(r.watch[direct]) > 0 {
		fmt.Fprintln(out, "(a watch's time runs from the create's response to the event; below zero, the event came first)")
	}

	if r.rps[direct] > 0 && r.rps[viaHub] > 0 {
		fmt.Fprintf(out, "\nthroughput, %d clients getting one pod for %s: direct %.0f req/s, through the hub %.0f req/s, hub/direct %.2f× (failed: %d direct, %d through the hub)\n",
			r.clients, r.window, r.rps[direct], r.rps[viaHub], r.rps[viaHub]/r.rps[direct], r.failed[direct], r.failed[viaHub])
	}

	if r.tunnels > 0 && r.pssAfter[1] > 0 {
		fmt.Fprintf(out, "\nidle tunnels: %d simulated clusters (Healthy %s after the first attach), %d tunnels verified open (GET /version through the hub answered 200; the first request, which opens the tunnel, p50 / p99 %s)\n",
			r.tunnels, r.registered.Round(time.Second), len(r.opened), msPair(r.opened))
		if r.openErr != "" {
			fmt.Fprintf(out, "  first failure: %s\n", r.openErr)
		}
		fmt.Fprintf(out, "  hub PSS %.1f MiB idle, %.1f MiB with the tunnels open (each after two garbage collections, the later of two reads 5 s apart; the earlier were %.1f and %.1f)\n",
			mib(r.pssBefore[1]), mib(r.pssAfter[1]), mib(r.pssBefore[0]), mib(r.pssAfter[0]))
		fmt.Fprintf(out, "  %s per idle tunnel (target ≤ 20 KB)\n", perTunnel(r.pssAfter[1]-r.pssBefore[1], len(r.opened)))
		if n := float64(len(r.opened)); n > 0 && len(r.goAfter) > 0 {
			grown := func(m string) float64 { return (r.goAfter[m] - r.goBefore[m]) / n }
			fmt.Fprintf(out, "  the hub's Go runtime, per tunnel: live heap %+.1f KB, goroutine stacks %+.1f KB, %+.1f goroutines (PSS also holds the heap's headroom until the next collection)\n",
				grown(liveHeap)/1024, grown(stacks)/1024, grown(goroutines))
		}
	}
	if r.took > 0 {
		fmt.Fprintf(out, "\nmeasured in %s, from starting the hub\n", r.took.Round(time.Second))
	}
}

func latencyRow(tw io.Writer, name string, lat [2][]time.Duration, withRatio bool, target string) {
	d, h := lat[direct], lat[viaHub]
	ratio, added := "-", "-"
	if len(d) > 0 && len(h) > 0 {
		added = fmt.Sprintf("%+.2f ms", ms(pct(h, 99)-pct(d, 99)))
		if withRatio {
			ratio = fmt.Sprintf("%.2f× / %.2f×", float64(pct(h, 50))/float64(pct(d, 50)), float64(pct(h, 99))/float64(pct(d, 99)))
		}
	}
	fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, len(d), msPair(d), msPair(h), ratio, added, target)
}

// msPair is p50 / p99 of sorted ds in ms.
func msPair(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f / %.2f ms", ms(pct(ds, 50)), ms(pct(ds, 99)))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perTunnel is the memory grown, shared by the tunnels, in KB.
func perTunnel(grown int64, tunnels int) string {
	if tunnels == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KB", float64(grown)/1024/float64(tunnels))
}
