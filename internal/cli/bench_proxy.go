package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchProxyCmd() *cobra.Command {
	o := bench.ProxyOptions{Pods: 1000, Requests: 200, Clients: 100, Duration: 10 * time.Second, Tunnels: 1000}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Latency, throughput and hub memory of the access point, against a cluster's own apiserver",
		Long: `Start a hub and a local cluster holding --pods pods, attach the cluster, and make the
same requests direct (the cluster's apiserver, as its admin) and through the hub's access
point (as the hub's admin): kubectl's list of pods, a single get, a watch's event latency,
and --clients concurrent clients' requests/s. Then run --tunnels simulated clusters in
this process, open each one's tunnel, and print the hub's memory per idle tunnel.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Pods < 1 || o.Requests < 1 || o.Clients < 1 || o.Duration <= 0 || o.Tunnels < 0 {
				return fmt.Errorf("--pods, --requests, --clients and --duration must be positive and --tunnels not negative")
			}
			return bench.Proxy(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().IntVar(&o.Pods, "pods", o.Pods, "pods in the cluster, which the kubectl get pods series lists")
	cmd.Flags().IntVar(&o.Requests, "requests", o.Requests, "lists and watch events per latency series; single gets are ten times as many")
	cmd.Flags().IntVar(&o.Clients, "clients", o.Clients, "concurrent clients in the throughput window")
	cmd.Flags().DurationVar(&o.Duration, "duration", o.Duration, "throughput window, per path")
	cmd.Flags().IntVar(&o.Tunnels, "tunnels", o.Tunnels, "simulated clusters whose idle tunnels' memory is measured; 0 skips it")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "a new or empty dir for the hub's and clusters' data and logs, kept after (default: a temporary dir, removed after)")
	return cmd
}
