package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func gcPercent() int { v := debug.SetGCPercent(-1); debug.SetGCPercent(v); return v }

func TestSetLeavesAnOperatorsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	Set(Hub)
	if got := gcPercent(); got != Hub {
		t.Fatalf("without GOGC, collecting at %d %%, want %d", got, Hub)
	}

	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // as the runtime read it at start
	Set(Hub)
	if got := gcPercent(); got != 80 {
		t.Fatalf("with GOGC=80, collecting at %d %%, want the operator's 80", got)
	}
}

// A settled process collects at the lower growth and has given back the
// memory its heap grew into at the higher one.
func TestSettleGivesBackTheStartsHeadroom(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	Set(HubStarting)
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	garbage = nil
	runtime.GC() // the garbage is now free heap, which the runtime keeps
	Settle(Hub)
	if got := gcPercent(); got != Hub {
		t.Fatalf("settled, collecting at %d %%, want %d", got, Hub)
	}
	var m runtime.MemStats
	// The runtime's own scavenger would take far longer than this.
	deadline := time.Now().Add(2 * time.Second)
	for {
		runtime.ReadMemStats(&m)
		if m.HeapIdle-m.HeapReleased < 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after settling, %d MiB of free heap not given back", (m.HeapIdle-m.HeapReleased)>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
