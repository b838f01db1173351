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

func newBenchPolicyCmd() *cobra.Command {
	var clusters, runs int
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Policy create → enforced in every local cluster, and drift restore time",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return bench.Policy(signalContext(), c.OutOrStdout(), clusters, runs)
		},
	}
	cmd.Flags().IntVar(&clusters, "clusters", 3, "local clusters to attach")
	cmd.Flags().IntVar(&runs, "runs", 20, "measurements of each")
	return cmd
}
