package cli

import (
	"time"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchAgentCmd() *cobra.Command {
	var runs int
	var window time.Duration
	var agentBin string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Attach → Healthy for a local cluster, and an idle agent's memory and CPU",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return bench.Agent(signalContext(), c.OutOrStdout(), runs, window, agentBin)
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 10, "attach measurements")
	cmd.Flags().DurationVar(&window, "window", time.Minute, "idle window for the agent's CPU")
	cmd.Flags().StringVar(&agentBin, "agent-binary", "", "agent to measure: a flotilla-agent binary (default: this binary's 'agent')")
	return cmd
}
