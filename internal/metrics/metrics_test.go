package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func fanouts(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := fanout.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// A write is timed to the first synced report after it, once.
func TestFanoutEndsAtTheFirstSyncedReport(t *testing.T) {
	start := fanouts(t)
	PoliciesReported("a", true) // no write pending
	PoliciesChanged("a")
	PoliciesChanged("a") // the oldest pending write counts
	PoliciesReported("a", false)
	if n := fanouts(t) - start; n != 0 {
		t.Fatalf("%d fan-outs before a synced report, want 0", n)
	}
	PoliciesReported("a", true)
	PoliciesReported("a", true)
	if n := fanouts(t) - start; n != 1 {
		t.Fatalf("%d fan-outs, want 1", n)
	}
}
