// Package metrics defines what the hub and the agent export in Prometheus'
// text format, and the small functions the rest of the code calls to
// record it. It imports no controller-runtime: the agent links it too, and
// the hub registers its part into controller-runtime's registry itself, so
// that one endpoint serves Flotilla's metrics with the manager's
// (reconcile errors, workqueue depths).
//
// No metric has a per-cluster label: a hub holds 10,000 clusters.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Healths are the values of the hub's health label, all exported (as 0
// when no cluster has them) so that alert rules never meet a missing series.
var Healths = []string{"Unknown", "Healthy", "Unhealthy", "Disconnected"}

// durationBuckets spread from a second to an hour: registration and attach
// take seconds when an agent is waiting, and as long as someone takes to
// start it otherwise.
var durationBuckets = []float64{0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}

var (
	clustersDesc = prometheus.NewDesc("flotilla_hub_clusters", "Clusters by the health their status says.", []string{"health"}, nil)
	tunnelsDesc  = prometheus.NewDesc("flotilla_hub_tunnels", "Tunnels agents hold open to this hub for the access point.", nil, nil)
	queuedDesc   = prometheus.NewDesc("flotilla_hub_health_writes_queued", "Clusters whose status the tracker has yet to write.", nil, nil)

	heartbeatAge = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_hub_heartbeat_age_seconds",
		Help:    "Age of a cluster's previous heartbeat when its next report arrives: the interval agents actually achieve.",
		Buckets: []float64{1, 2, 5, 10, 11, 12.5, 15, 20, 30, 60, 300},
	})
	registration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_hub_registration_duration_seconds",
		Help:    "Time from a cluster's bootstrap token being created to its agent's first certificate being issued.",
		Buckets: durationBuckets,
	})
	attach = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_hub_attach_duration_seconds",
		Help:    "Time from a Cluster being created (attach) to its first Healthy status.",
		Buckets: durationBuckets,
	})
	fanout = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_hub_policy_fanout_seconds",
		Help:    "Time from a change of a cluster's desired policies on the hub to the cluster's agent reporting its policies synced.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
	})
	streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flotilla_hub_agent_streams",
		Help: "Heartbeat streams agents hold open to this hub.",
	})
)

// sources the hub sets once its cache and tunnels exist; a scrape before
// then reports nothing for them.
var (
	countClusters atomic.Pointer[func() map[string]int]
	countTunnels  atomic.Pointer[func() int]
	countQueued   atomic.Pointer[func() int]
)

// hubCollector reads cluster and tunnel counts when scraped, from memory the
// hub keeps anyway, rather than tracking every change.
type hubCollector struct{}

func (hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clustersDesc
	ch <- tunnelsDesc
	ch <- queuedDesc
}

func (hubCollector) Collect(ch chan<- prometheus.Metric) {
	if f := countClusters.Load(); f != nil {
		n := (*f)()
		for _, h := range Healths {
			ch <- prometheus.MustNewConstMetric(clustersDesc, prometheus.GaugeValue, float64(n[h]), h)
		}
	}
	if f := countTunnels.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(tunnelsDesc, prometheus.GaugeValue, float64((*f)()))
	}
	if f := countQueued.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64((*f)()))
	}
}

var hubOnce sync.Once

// RegisterHub registers the hub's metrics with reg, once per process (a
// test may run several hubs in one).
func RegisterHub(reg prometheus.Registerer) {
	hubOnce.Do(func() {
		reg.MustRegister(hubCollector{}, heartbeatAge, registration, attach, fanout, streams)
	})
}

// CountClusters sets how the hub counts its clusters by health, when
// scraped. A health count missing from the map is 0; "" counts as Unknown.
func CountClusters(f func() map[string]int) { countClusters.Store(&f) }

// CountTunnels sets how the hub counts its open tunnels, when scraped.
func CountTunnels(f func() int) { countTunnels.Store(&f) }

// CountHealthQueue sets how the hub counts the health writes it has
// queued, when scraped. The tracker's queue is not among the workqueues
// controller-runtime reports: client-go takes one workqueue metrics
// provider per process, and the hub links Kubernetes' own (for its
// embedded apiserver), which registers elsewhere.
func CountHealthQueue(f func() int) { countQueued.Store(&f) }

// HeartbeatArrived records the age of a cluster's previous heartbeat as
// its next one arrives.
func HeartbeatArrived(previous, now time.Time) {
	heartbeatAge.Observe(now.Sub(previous).Seconds())
}

// Registered records a registration: the bootstrap token was created at
// tokenCreated, and the agent's certificate is issued now.
func Registered(tokenCreated time.Time) {
	registration.Observe(time.Since(tokenCreated).Seconds())
}

// FirstHealthy records a cluster attached at attached turning Healthy for
// the first time.
func FirstHealthy(attached time.Time) {
	attach.Observe(time.Since(attached).Seconds())
}

// StreamOpened counts an agent stream until the returned func is called.
func StreamOpened() (closed func()) {
	streams.Inc()
	return streams.Dec
}

// maxFanout bounds how long a desired-state change waits for a report. An
// agent reports only when its report changes: a change that alters nothing
// it reports gets none, and must not be matched, much later, with a report
// that has nothing to do with it.
const maxFanout = 10 * time.Minute

// pending holds, per cluster, the oldest desired-state change its agent has
// not yet reported synced.
var pending = struct {
	sync.Mutex
	since  map[string]time.Time
	pruned time.Time
}{since: map[string]time.Time{}}

// PoliciesChanged records that cluster's desired policies changed.
func PoliciesChanged(cluster string) {
	now := time.Now()
	pending.Lock()
	defer pending.Unlock()
	if _, ok := pending.since[cluster]; !ok {
		pending.since[cluster] = now
	}
	// Writes no report answers (and detached clusters) are dropped now and
	// then, not on every change: a policy change reaches every cluster.
	if now.Sub(pending.pruned) > time.Minute {
		pending.pruned = now
		for name, t := range pending.since {
			if now.Sub(t) > maxFanout {
				delete(pending.since, name)
			}
		}
	}
}

// PoliciesReported records cluster's agent reporting its policies; synced
// says whether it holds all they need, which ends a fan-out.
func PoliciesReported(cluster string, synced bool) {
	if !synced {
		return
	}
	pending.Lock()
	since, ok := pending.since[cluster]
	delete(pending.since, cluster)
	pending.Unlock()
	if d := time.Since(since); ok && d <= maxFanout {
		fanout.Observe(d.Seconds())
	}
}
