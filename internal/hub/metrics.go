package hub

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"

	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/heartbeat/tracker"
	"flotilla.dev/flotilla/internal/metrics"
)

// DefaultMetricsBindAddress serves /metrics on loopback, on a port picked
// once and kept in the data dir like the hub's others.
const DefaultMetricsBindAddress = "127.0.0.1:0"

// metricsAddress resolves where the manager serves /metrics: "0" serves
// nothing, a port of 0 the one kept in the data dir (picked and kept the
// first time), any other as given.
func metricsAddress(dir *datadir.Dir, addr string) (string, error) {
	if addr == "" {
		addr = DefaultMetricsBindAddress
	}
	if addr == "0" {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-bind-address %q: %v", addr, err)
	}
	if port == "0" {
		p, err := dir.Port("metrics", 0)
		if err != nil {
			return "", err
		}
		port = strconv.Itoa(p)
	}
	addr = net.JoinHostPort(host, port)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	klog.InfoS("serving metrics", "url", "http://"+net.JoinHostPort(host, port)+"/metrics")
	return addr, nil
}

// profiling serves Go's profiles beside /metrics, as Kubernetes'
// components do: what a hub spends its CPU and memory on at scale is
// otherwise guesswork. The address is loopback unless set otherwise.
func profiling() map[string]http.Handler {
	return map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// exportMetrics registers the hub's metrics with controller-runtime's
// registry, which the manager serves with its own (reconcile errors,
// workqueue depths), and gives them their sources: clusters are counted
// from the cache's own store when scraped, without copying one.
func exportMetrics(ctx context.Context, mgr ctrl.Manager, t *tracker.Tracker) error {
	metrics.RegisterHub(ctrlmetrics.Registry)
	inf, err := mgr.GetCache().GetInformer(ctx, &fv1.Cluster{})
	if err != nil {
		return err
	}
	si, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return fmt.Errorf("the cache's informer for Clusters keeps no store")
	}
	store := si.GetStore()
	metrics.CountClusters(func() map[string]int {
		n := map[string]int{}
		for _, o := range store.List() {
			if c, ok := o.(*fv1.Cluster); ok {
				h := string(c.Status.Health)
				if h == "" {
					h = string(fv1.HealthUnknown)
				}
				n[h]++
			}
		}
		return n
	})
	metrics.CountHealthQueue(t.Queued)
	if tunnels := t.Tunnels; tunnels != nil {
		metrics.CountTunnels(tunnels.Open)
	}
	return nil
}

// deliverPolicies hands a cluster's desired policies to its stream and,
// when they changed, starts timing their fan-out.
func deliverPolicies(c *heartbeat.Changes) func(cluster string, data map[string]string) error {
	return func(cluster string, data map[string]string) error {
		_, changed, err := c.SetDesired(cluster, data)
		if changed {
			metrics.PoliciesChanged(cluster)
		}
		return err
	}
}
