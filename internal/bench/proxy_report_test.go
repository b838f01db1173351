package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPrintProxy(t *testing.T) {
	ms := func(vs ...float64) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v*float64(time.Millisecond)))
		}
		return ds
	}
	r := &proxyResult{
		pods: 1000, pages: 2,
		list:    [2][]time.Duration{ms(100, 200), ms(110, 240)},
		get:     [2][]time.Duration{ms(1, 2), ms(2, 3.5)},
		clients: 100, window: 10 * time.Second, rps: [2]float64{2000, 500},
		tunnels: 1000, opened: ms(make([]float64, 1000)...),
		pssBefore: [2]int64{100 << 20, 100 << 20}, pssAfter: [2]int64{110 << 20, 120 << 20},
		goBefore: map[string]float64{liveHeap: 0, stacks: 0, goroutines: 10},
		goAfter:  map[string]float64{liveHeap: 10 << 20, stacks: 2 << 20, goroutines: 4010},
	}
	var out bytes.Buffer
	printProxy(&out, r)
	got := out.String()
	for _, want := range []string{
		"kubectl get pods (1000 pods, 2 pages)",
		"100.00 / 200.00 ms", "110.00 / 240.00 ms", "1.10× / 1.20×", "+40.00 ms",
		"1.00 / 2.00 ms", "2.00 / 3.50 ms", "2.00× / 1.75×", "+1.50 ms",
		"direct 2000 req/s, through the hub 500 req/s, hub/direct 0.25×",
		"1000 tunnels verified open",
		"hub PSS 100.0 MiB idle, 120.0 MiB with the tunnels open",
		"20.5 KB per idle tunnel",
		"live heap +10.2 KB, goroutine stacks +2.0 KB, +4.0 goroutines",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// The watch was not measured: its row shows dashes, and no note.
	for _, line := range strings.Split(got, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "watch: create → ADDED"); ok {
			if f := strings.Fields(rest); strings.Join(f[:5], " ") != "0 - - - -" {
				t.Errorf("an unmeasured watch's row: %q", line)
			}
		}
	}
	if strings.Contains(got, "below zero") {
		t.Errorf("a note on a watch not measured:\n%s", got)
	}
}
