package bench

import (
	"fmt"
	"net/http"

	"flotilla.dev/flotilla/internal/datadir"
)

// hubStreams is the number of agent streams the hub holds open, from its
// /metrics (on its metrics port, kept in its data dir).
func hubStreams(hubDir string) (int, error) {
	port, err := datadir.RecordedPort(hubDir, "metrics")
	if err != nil {
		return 0, err
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("hub answered %s", resp.Status)
	}
	sums, err := sumMetrics(resp.Body, "flotilla_hub_agent_streams")
	return int(sums["flotilla_hub_agent_streams"]), err
}
