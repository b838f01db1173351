package e2e

import (
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/testenv"
)

// An agent that holds its cluster's namespaces as a restarted hub holds
// them does not list them again: the new hub's token carries their digest.
// A fleet listing at once was most of a restarted hub's load.
func TestRestartedHubIsNotListedAgain(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1, Nodes: 1})
	port, err := datadir.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	agentMetrics := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	startAgent(t, env, env.Clusters[0], "", "--heartbeat-interval", "1s", "--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(port))
	hubMetrics := "http://127.0.0.1:" + strconv.Itoa(hubPort(t, env.Hub.Dir, "metrics")) + "/metrics"
	streams := func(m map[string]*dto.MetricFamily) bool { return value(m, "flotilla_hub_agent_streams", "", "") == 1 }
	scrapeUntil(t, hubMetrics, 30*time.Second, "the agent's stream", streams)
	listed := func(m map[string]*dto.MetricFamily) float64 {
		return value(m, "flotilla_agent_hub_fetches_total", "kind", "namespaces")
	}
	scrapeUntil(t, agentMetrics, 30*time.Second, "the namespaces listed", func(m map[string]*dto.MetricFamily) bool { return listed(m) >= 1 })
	// The agent lists again as it reports its namespaces: wait for it.
	before := -1.0
	for i := 0; ; i++ {
		m, err := scrape(agentMetrics)
		if err != nil {
			t.Fatal(err)
		}
		if n := listed(m); n != before {
			before = n
		} else {
			break
		}
		if i == 10 {
			t.Fatalf("the agent keeps listing its namespaces: %v times", before)
		}
		time.Sleep(3 * time.Second)
	}

	env.Hub.Kill()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, hubMetrics, 30*time.Second, "the agent's stream on the restarted hub", streams)
	// An agent that must list does so within 10 s of hearing of the
	// restart, at a random moment; it hears within a heartbeat.
	time.Sleep(12 * time.Second)
	m, err := scrape(agentMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if after := listed(m); after != before {
		t.Errorf("the agent listed its namespaces %v times after the hub restarted, with nothing changed", after-before)
	}
}
