// Command flotilla-agent is the agent alone, for running inside member
// clusters: it links only client libraries, so it starts small and idles
// small. `flotilla agent` runs the same code from the full binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/agent"
	_ "flotilla.dev/flotilla/internal/version"
)

func main() {
	cfg := agent.NewConfig()
	fs := flag.NewFlagSet("flotilla-agent", flag.ContinueOnError)
	fs.StringVar(&cfg.ClusterKubeconfig, "cluster-kubeconfig", "", "kubeconfig of the member cluster (default: in-cluster)")
	fs.StringVar(&cfg.BootstrapKubeconfig, "bootstrap-kubeconfig", "", "kubeconfig with the single-use bootstrap credential")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the agent's key and identity (required)")
	fs.DurationVar(&cfg.Interval, "heartbeat-interval", cfg.Interval, "time between heartbeats")
	fs.DurationVar(&cfg.CertTTL, "certificate-ttl", cfg.CertTTL, "lifetime asked for the agent's certificate")
	fs.StringVar(&cfg.MetricsBindAddress, "metrics-bind-address", "", "serve /metrics (Prometheus) at this address, such as :8080 (default: none)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if cfg.DataDir == "" {
		fmt.Fprintln(os.Stderr, "flotilla-agent: --data-dir is required: the agent keeps its key and identity there")
		os.Exit(2)
	}
	if err := logTo(filepath.Join(cfg.DataDir, "logs", "agent.log")); err != nil {
		fmt.Fprintf(os.Stderr, "flotilla-agent: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "flotilla-agent: %v\n", err)
		os.Exit(1)
	}
}

func logTo(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("one_output", "true")
	klog.SetOutput(f)
	return nil
}
