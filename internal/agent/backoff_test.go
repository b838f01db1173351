package agent

import (
	"slices"
	"testing"
	"time"
)

// Agents that lose their hub together come back spread out, over a window
// that grows while the hub stays away, and never wait a whole interval.
func TestReconnectBackoffJitteredAndGrowing(t *testing.T) {
	const agents = 1000
	for _, tc := range []struct {
		interval time.Duration
		floors   []time.Duration // the shortest wait of each retry
	}{
		{10 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{2 * time.Second, []time.Duration{500 * time.Millisecond, time.Second, time.Second}},
	} {
		waits := make([][]time.Duration, len(tc.floors))
		for range agents {
			b := reconnectBackoff(tc.interval)
			for i := range waits {
				waits[i] = append(waits[i], b.Step())
			}
		}
		for i, ws := range waits {
			floor := tc.floors[i]
			shortest, longest := slices.Min(ws), slices.Max(ws)
			if shortest < floor || longest >= 2*floor || longest >= tc.interval {
				t.Errorf("interval %s, retry %d: waits from %s to %s, want within [%s, %s) and under the interval", tc.interval, i+1, shortest, longest, floor, 2*floor)
			}
			// Spread over most of the range: agents in lockstep would share one wait.
			slices.Sort(ws)
			if len(slices.Compact(ws)) < agents/2 || longest-shortest < floor*8/10 {
				t.Errorf("interval %s, retry %d: waits spanning %s among %d agents: not spread", tc.interval, i+1, longest-shortest, agents)
			}
		}
	}
}
