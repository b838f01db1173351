package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchFloodCmd() *cobra.Command {
	o := bench.FloodOptions{Window: 20 * time.Second, Dialers: 50, Objects: 500}
	cmd := &cobra.Command{
		Use:   "flood",
		Short: "Hub CPU, memory and admin request latency while one agent identity floods it",
		Long: `Start a fresh hub, attach a cluster and, holding its agent identity, flood the hub
in phases: reports on one stream as fast as the hub answers (health, then policy
reports), streams opened as fast as --dialers can, and ClusterNamespaces and Leases
created in the cluster's hub namespace. Through each phase, and once idle, an admin
client makes a request every 50 ms. Prints, per phase, the hub's CPU and memory,
admin latency (p50, p99, max) and what the flood achieved.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Window <= 0 || o.Dialers < 1 || o.Objects < 0 {
				return fmt.Errorf("--window and --dialers must be positive and --objects not negative")
			}
			return bench.Flood(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().DurationVar(&o.Window, "window", o.Window, "length of each phase")
	cmd.Flags().IntVar(&o.Dialers, "dialers", o.Dialers, "streams opened at once in the streams phase")
	cmd.Flags().StringVar(&o.HubBinary, "hub-binary", "", "flotilla binary whose hub to flood (default: this one), to compare builds")
	cmd.Flags().IntVar(&o.Objects, "objects", o.Objects, "ClusterNamespaces and Leases (each) the objects phase tries to create")
	return cmd
}
