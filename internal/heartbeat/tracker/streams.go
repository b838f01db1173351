package tracker

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Opening a stream costs the hub a TLS handshake, a read of the Cluster
// and a goroutine; an agent opens one when it starts, after rotating its
// certificate and when a stream breaks. These bound how often one identity
// may open streams: a copy of an identity opening them in a loop is
// answered 429 from the fourth a second on, before the hub upgrades.
const (
	opensPerSecond = 1
	opensBurst     = 3
)

// An agent sends a report every interval (10 s), and one more when its
// policy report changes. One identity's reports are taken at most this
// fast: a stream with more waiting is read later, so a flood of reports
// waits in its own connection's buffers (and then its writer) instead of
// costing the hub a decode, a cache read and a reply each. Unlimited, one
// identity had the hub answer 6,000 reports a second with a core.
const (
	reportsPerSecond = 10
	reportsBurst     = 20
)

// streamLimits holds, per cluster, how fast its identity may open streams
// and send reports. How many streams it may hold is Changes' concern: one,
// the newest.
type streamLimits struct {
	mu      sync.Mutex
	opens   map[string]*rate.Limiter
	reports map[string]*rate.Limiter
}

// reportDelay is how long cluster's stream waits before it takes its next
// report.
func (s *streamLimits) reportDelay(cluster string, now time.Time) time.Duration {
	s.mu.Lock()
	l, ok := s.reports[cluster]
	if !ok {
		l = rate.NewLimiter(reportsPerSecond, reportsBurst)
		s.reports[cluster] = l
	}
	s.mu.Unlock()
	return l.ReserveN(now, 1).DelayFrom(now)
}

// allow says whether cluster may open a stream now, and if not, how long
// until it may.
func (s *streamLimits) allow(cluster string, now time.Time) (bool, time.Duration) {
	s.mu.Lock()
	l, ok := s.opens[cluster]
	if !ok {
		l = rate.NewLimiter(opensPerSecond, opensBurst)
		s.opens[cluster] = l
	}
	s.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (s *streamLimits) forget(cluster string) {
	s.mu.Lock()
	delete(s.opens, cluster)
	delete(s.reports, cluster)
	s.mu.Unlock()
}
