// Package gctune sets how much a Flotilla process's heap may grow between
// garbage collections. Kubernetes components are built for throughput and
// collect at 100 % growth; Flotilla's processes hold state for a fleet and
// trade some CPU for memory. GOGC, when set, wins.
package gctune

import (
	"os"
	"runtime/debug"
)

const (
	// APIServer is for a local cluster's in-process apiserver, whose heap
	// is mostly short-lived request garbage: at 50 % rather than 100 % the
	// hub took a quarter less memory at 300 simulated clusters with no
	// measurable CPU cost, and at 25 % 40 % more CPU.
	APIServer = 50
	// Hub is for the hub, whose live heap is mostly every cluster's state
	// and grows with the fleet. At 2,000 simulated clusters (flotilla bench
	// fleet) 35 % rather than 50 % took its memory from 137-139 to 121 KB
	// per cluster, for about 15 % more CPU when idle (164-169 to 193
	// mCPU). At 10,000 it was 79 rather than 89 KB, registering them took
	// 29 % longer, and a policy's fan-out and a hub restart were no slower.
	Hub = 35
	// HubStarting is for the hub until its caches hold the fleet. It then
	// decodes every cluster's objects at once, all garbage but the cached
	// copy: at 35 % the collector took a third of that work. With a
	// restarted hub's data of 2,000 simulated clusters its caches filled
	// in 4.4-4.6 s at 35 %, 3.0-3.4 s at 100 % and 2.8-3.0 s at 200 %;
	// with 10,000 clusters' data, in 22.5-24 s at 35 % and 16 s at 100 %.
	HubStarting = 100
)

// Set makes the process collect at percent heap growth, unless GOGC is set.
func Set(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}

// Settle lowers the growth to percent after a start at a higher one, and
// gives back to the operating system at once the memory the heap grew
// into meanwhile, which the runtime would keep for minutes: 5 s after a
// fresh hub was ready its PSS was 302-304 MiB without this, 245 with it,
// and 229-230 at 35 % throughout. The collection that takes runs in the
// background, off the start's path.
func Settle(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
		go debug.FreeOSMemory()
	}
}
