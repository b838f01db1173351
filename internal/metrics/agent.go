package metrics

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Agent is the agent's own registry: it serves only Flotilla's metrics and
// the process's, not whatever the libraries it links register globally.
var Agent = prometheus.NewRegistry()

var (
	applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_agent_policy_applies_total",
		Help: "Objects the agent applied to its cluster for policies, by policy type.",
	}, []string{"type"})
	applyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_agent_policy_apply_errors_total",
		Help: "Objects the agent failed to apply to its cluster for policies, by policy type.",
	}, []string{"type"})
	heartbeatRTT = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_agent_heartbeat_rtt_seconds",
		Help:    "Time from sending a heartbeat to the hub's reply.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	heartbeatErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flotilla_agent_heartbeat_errors_total",
		Help: "Heartbeats that got no reply (the stream is then opened again).",
	})
	reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flotilla_agent_stream_reconnects_total",
		Help: "Heartbeat streams opened after the agent's first.",
	})
	fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_agent_hub_fetches_total",
		Help: "Reads of the hub's apiserver for what it holds for this cluster, by kind (namespaces, policies).",
	}, []string{"kind"})
)

func init() {
	Agent.MustRegister(applies, applyErrors, heartbeatRTT, heartbeatErrors, reconnects, fetches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Applied counts one object applied for a policy of type typ, or failed.
func Applied(typ string, err error) {
	if typ == "" {
		typ = "unknown"
	}
	if err != nil {
		applyErrors.WithLabelValues(typ).Inc()
		return
	}
	applies.WithLabelValues(typ).Inc()
}

// HeartbeatReplied records a heartbeat sent at sent, answered now, or
// failed with err.
func HeartbeatReplied(sent time.Time, err error) {
	if err != nil {
		heartbeatErrors.Inc()
		return
	}
	heartbeatRTT.Observe(time.Since(sent).Seconds())
}

var opened atomic.Bool

// StreamDialed counts a heartbeat stream opened; every one after the
// first is a reconnect.
func StreamDialed() {
	if opened.Swap(true) {
		reconnects.Inc()
	}
}

// Fetched counts one read of kind from the hub.
func Fetched(kind string) { fetches.WithLabelValues(kind).Inc() }

// ServeAgent serves the agent's registry on addr at /metrics until stop is
// closed; it returns once it listens, so a port in use fails the start.
func ServeAgent(addr string, stop <-chan struct{}) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(Agent, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-stop
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.Close()
		}
	}()
	return l.Addr(), nil
}
