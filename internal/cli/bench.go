package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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
	var objects int
	insights := &cobra.Command{
		Use:   "insights",
		Short: "Time and member apiserver load of checking every object a new policy governs, in a cluster of N objects",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if objects < 2 {
				return fmt.Errorf("--objects must be at least 2")
			}
			return bench.Insights(signalContext(), c.OutOrStdout(), objects)
		},
	}
	insights.Flags().IntVar(&objects, "objects", 10000, "objects the policy governs")
	cmd.AddCommand(startup, newBenchFleetCmd(), newBenchAgentCmd(), newBenchPolicyCmd(), newBenchFloodCmd(), newBenchProxyCmd(), newBenchBackupCmd(), newBenchLifecycleCmd(), newBenchRealNodeCmd(), insights)
	return cmd
}

func newBenchFleetCmd() *cobra.Command {
	o := bench.FleetOptions{Window: time.Minute, Concurrency: 50, Probes: 100}
	var clusters string
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Registration time, memory, CPU and heartbeat latency of a hub serving N simulated clusters",
		Long: `Start a fresh hub for each fleet size and attach that many simulated clusters to it:
real agents (registration and heartbeats every 10s) running in this process, each
reporting on an in-memory member cluster. Prints the time to register them all, the
hub's memory and CPU over a steady-state window, and how long a change in a cluster
takes to show in the hub's Cluster status.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			for _, s := range strings.Split(clusters, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 1 {
					return fmt.Errorf("--clusters %q: want positive numbers separated by commas, e.g. 100,1000", clusters)
				}
				o.Clusters = append(o.Clusters, n)
			}
			if o.Concurrency < 1 || o.Probes < 0 || o.Window <= 0 {
				return fmt.Errorf("--concurrency and --window must be positive and --probes not negative")
			}
			return bench.Fleet(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().StringVar(&clusters, "clusters", "100,1000", "fleet sizes to measure, comma-separated")
	cmd.Flags().DurationVar(&o.Window, "window", o.Window, "steady-state window for CPU, memory and heartbeat latency")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", o.Concurrency, "registrations in flight at once")
	cmd.Flags().IntVar(&o.Probes, "probes", o.Probes, "clusters whose inventory changes during the window")
	cmd.Flags().BoolVar(&o.RestartHub, "restart-hub", false, "at the end, kill the hub (SIGKILL) right after a policy change, start it again and time the fleet's return")
	cmd.Flags().StringVar(&o.Profile, "profile", "", "write CPU profiles of the simulated fleet and the hub during the policy fan-out and, with --restart-hub, the fleet's return to the new hub into this directory")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the data dirs and logs (the hub's and the agents') for inspection")
	return cmd
}
