package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/testenv"
)

// A cluster attached, healthy and then silent shows in the hub's /metrics
// and in Events on its Cluster; its agent serves its own /metrics.
func TestMetricsAndEvents(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1, Nodes: 1})
	ctx := context.Background()
	const name = "cluster-1"

	port, err := datadir.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	agentMetrics := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	agent := startAgent(t, env, env.Clusters[0], "", "--heartbeat-interval", "1s", "--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(port))

	hubMetrics := "http://127.0.0.1:" + strconv.Itoa(hubPort(t, env.Hub.Dir, "metrics")) + "/metrics"
	health := func(h string) func(map[string]*dto.MetricFamily) float64 {
		return func(m map[string]*dto.MetricFamily) float64 { return value(m, "flotilla_hub_clusters", "health", h) }
	}
	streams := func(m map[string]*dto.MetricFamily) float64 { return value(m, "flotilla_hub_agent_streams", "", "") }

	m := scrapeUntil(t, hubMetrics, 30*time.Second, "1 Healthy cluster and 1 stream", func(m map[string]*dto.MetricFamily) bool {
		return health("Healthy")(m) == 1 && streams(m) == 1
	})
	for _, h := range []string{"Unknown", "Unhealthy", "Disconnected"} {
		if v := health(h)(m); v != 0 {
			t.Errorf("flotilla_hub_clusters{health=%q} = %v, want 0", h, v)
		}
	}
	for _, n := range []string{"flotilla_hub_registration_duration_seconds", "flotilla_hub_attach_duration_seconds"} {
		if c := histogramCount(m, n); c != 1 {
			t.Errorf("%s counts %d observations, want 1", n, c)
		}
	}
	// The manager's own, from the registry the hub serves.
	for _, n := range []string{"controller_runtime_reconcile_errors_total", "workqueue_depth", "flotilla_hub_tunnels", "flotilla_hub_heartbeat_age_seconds"} {
		if m[n] == nil {
			t.Errorf("the hub's /metrics has no %s", n)
		}
	}

	a := scrapeUntil(t, agentMetrics, 10*time.Second, "agent heartbeats measured", func(m map[string]*dto.MetricFamily) bool {
		return histogramCount(m, "flotilla_agent_heartbeat_rtt_seconds") > 0
	})
	if a["flotilla_agent_stream_reconnects_total"] == nil || value(a, "flotilla_agent_stream_reconnects_total", "", "") != 0 {
		t.Errorf("the agent's /metrics has no flotilla_agent_stream_reconnects_total of 0")
	}
	if value(a, "flotilla_agent_hub_fetches_total", "kind", "namespaces") < 1 {
		t.Errorf("the agent's /metrics counts no namespace fetch from the hub")
	}

	// A policy change reaches the cluster: the agent counts what it
	// applies, and the hub times the fan-out to the agent's report.
	before := histogramCount(scrapeUntil(t, hubMetrics, time.Second, "hub scraped", func(map[string]*dto.MetricFamily) bool { return true }), "flotilla_hub_policy_fanout_seconds")
	if err := env.Hub.Client.Create(ctx, &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "viewers"}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{ClusterGroup: fv1.DefaultName},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "alice"}}}}}); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, agentMetrics, 30*time.Second, "the agent applied the policy", func(m map[string]*dto.MetricFamily) bool {
		return value(m, "flotilla_agent_policy_applies_total", "type", string(fv1.PolicyAccess)) >= 1
	})
	scrapeUntil(t, hubMetrics, 30*time.Second, "the hub timed the fan-out", func(m map[string]*dto.MetricFamily) bool {
		return histogramCount(m, "flotilla_hub_policy_fanout_seconds") > before
	})

	agent.Stop()
	scrapeUntil(t, hubMetrics, 20*time.Second, "the cluster Disconnected, no stream", func(m map[string]*dto.MetricFamily) bool {
		return health("Disconnected")(m) == 1 && health("Healthy")(m) == 0 && streams(m) == 0
	})

	var events []corev1.Event
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Hub.Clientset.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.kind": "Cluster", "involvedObject.name": name}.String(),
		})
		if err != nil {
			return false, err
		}
		events = list.Items
		_, ok := reasons(events)["Disconnected"]
		return ok, nil
	})
	got := reasons(events)
	if err != nil {
		t.Fatalf("no Disconnected Event on cluster %s; its Events: %v", name, got)
	}
	if msg := got["Disconnected"]; !strings.Contains(msg, "HeartbeatMissed") {
		t.Errorf("the Disconnected Event says no reason: %q", msg)
	}
	for _, r := range []string{"Registered", "Connected"} {
		if _, ok := got[r]; !ok {
			t.Errorf("no %s Event on cluster %s; its Events: %v", r, name, got)
		}
	}
	t.Logf("Events on cluster %s: %v", name, got)
}

// hubPort reads the port the hub keeps in its data dir for name.
func hubPort(t *testing.T, dir, name string) int {
	t.Helper()
	port, err := datadir.RecordedPort(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// scrapeUntil scrapes url until ok holds of what it serves, and returns that.
func scrapeUntil(t *testing.T, url string, timeout time.Duration, what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	var last map[string]*dto.MetricFamily
	var lastErr error
	start := time.Now()
	for time.Since(start) < timeout {
		last, lastErr = scrape(url)
		if lastErr == nil && ok(last) {
			t.Logf("%s after %s", what, time.Since(start).Round(10*time.Millisecond))
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, lastErr)
	}
	var names []string
	for n, f := range last {
		if strings.HasPrefix(n, "flotilla_") {
			names = append(names, fmt.Sprintf("%s=%v", n, f.GetMetric()))
		}
	}
	t.Fatalf("%s: not within %s; last scrape: %v", what, timeout, names)
	return nil
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// value is the gauge or counter name whose label is value (or that has no
// labels, for label ""); -1 if there is none.
func value(m map[string]*dto.MetricFamily, name, label, val string) float64 {
	f := m[name]
	if f == nil {
		return -1
	}
	for _, s := range f.GetMetric() {
		if label != "" && !hasLabel(s, label, val) {
			continue
		}
		switch {
		case s.GetGauge() != nil:
			return s.GetGauge().GetValue()
		case s.GetCounter() != nil:
			return s.GetCounter().GetValue()
		case s.GetUntyped() != nil:
			return s.GetUntyped().GetValue()
		}
	}
	return -1
}

func hasLabel(s *dto.Metric, name, val string) bool {
	for _, l := range s.GetLabel() {
		if l.GetName() == name && l.GetValue() == val {
			return true
		}
	}
	return false
}

// histogramCount is how many observations the histogram name holds.
func histogramCount(m map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	if f := m[name]; f != nil {
		for _, s := range f.GetMetric() {
			n += s.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// reasons maps each Event reason to its latest message.
func reasons(events []corev1.Event) map[string]string {
	out := map[string]string{}
	for _, e := range events {
		out[e.Reason] = e.Message
	}
	return out
}
