package agent

import (
	"slices"
	"testing"
	"time"
)

// Agents that lose their hub together come back spread out, over a window
// that grows while the hub stays away.
func TestReconnectBackoffJitteredAndGrowing(t *testing.T) {
	const agents = 1000
	waits := make([][]time.Duration, 6)
	for range agents {
		b := reconnectBackoff()
		for i := range waits {
			waits[i] = append(waits[i], b.Step())
		}
	}
	floor := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, ws := range waits {
		shortest, longest := slices.Min(ws), slices.Max(ws)
		if shortest < floor[i] || longest >= 2*floor[i] {
			t.Errorf("retry %d: waits from %s to %s, want within [%s, %s)", i+1, shortest, longest, floor[i], 2*floor[i])
		}
		// Spread over most of the range: agents in lockstep would share one wait.
		slices.Sort(ws)
		if len(slices.Compact(ws)) < agents/2 || longest-shortest < floor[i]*8/10 {
			t.Errorf("retry %d: waits spanning %s among %d agents: not spread", i+1, longest-shortest, agents)
		}
	}
}
