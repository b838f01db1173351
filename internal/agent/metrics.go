package agent

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/metrics"
)

// serveMetrics serves the agent's metrics on addr until ctx ends; an empty
// addr serves none. An agent in a pod would use ":8080".
func serveMetrics(ctx context.Context, addr string) error {
	if addr == "" {
		return nil
	}
	bound, err := metrics.ServeAgent(addr, ctx.Done())
	if err != nil {
		return fmt.Errorf("--metrics-bind-address: %v", err)
	}
	klog.InfoS("serving metrics", "url", "http://"+bound.String()+"/metrics")
	return nil
}
