package gctune

import (
	"runtime/debug"
	"testing"
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
