package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchLifecycleCmd() *cobra.Command {
	o := bench.LifecycleOptions{Nodes: 3, ScaleTo: 10}
	cmd := &cobra.Command{
		Use:   "lifecycle",
		Short: "Time the local provider: create, scale, upgrade (with the API's availability) and delete, and an idle cluster's memory",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Nodes < 1 || o.ScaleTo <= o.Nodes {
				return fmt.Errorf("--nodes must be at least 1 and --scale-to above it")
			}
			return bench.Lifecycle(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().IntVar(&o.Nodes, "nodes", o.Nodes, "nodes of each cluster")
	cmd.Flags().IntVar(&o.ScaleTo, "scale-to", o.ScaleTo, "nodes to scale up to, and back from")
	return cmd
}
