package cli

import (
	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Flotilla on this machine",
	}
	var runs int
	startup := &cobra.Command{
		Use:   "startup",
		Short: "Time to ready and memory of a hub, a local cluster and `up` with 2 clusters",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return bench.Startup(signalContext(), c.OutOrStdout(), runs)
		},
	}
	startup.Flags().IntVar(&runs, "runs", 3, "measurements of each")
	cmd.AddCommand(startup)
	return cmd
}
