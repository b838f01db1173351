package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchBackupCmd() *cobra.Command {
	o := bench.BackupOptions{Objects: 10000, Size: 1024}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Time a backup and a restore of a namespace of many objects, and the agent's peak memory",
		Long: `Start a hub and a local cluster, attach it, fill a namespace with --objects ConfigMaps
and Secrets of --size bytes (timing the member apiserver's write rate, the ceiling a
restore meets), back it up to the hub, restore it into another namespace, and print the
times, the archive's size and the agent's peak RSS during each.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Objects < 2 || o.Size < 1 {
				return fmt.Errorf("--objects must be at least 2 and --size positive")
			}
			return bench.Backup(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().IntVar(&o.Objects, "objects", o.Objects, "ConfigMaps and Secrets in the namespace, half each")
	cmd.Flags().IntVar(&o.Size, "size", o.Size, "bytes of data in each")
	cmd.Flags().StringVar(&o.AgentBinary, "agent-binary", "", "agent to measure: a flotilla-agent binary (default: this binary's 'agent')")
	return cmd
}
