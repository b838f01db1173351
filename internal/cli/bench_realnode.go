package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/bench"
)

func newBenchRealNodeCmd() *cobra.Command {
	o := bench.RealNodeOptions{Pods: 20}
	var classes []string
	cmd := &cobra.Command{
		Use:   "realnode",
		Short: "Time a real node's start and its pods' starts (per runtime class), and their memory (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Pods < 1 {
				return fmt.Errorf("--pods must be at least 1")
			}
			o.Classes = append([]string{""}, classes...)
			return bench.RealNode(signalContext(), c.OutOrStdout(), c.ErrOrStderr(), o)
		},
	}
	cmd.Flags().IntVar(&o.Pods, "pods", o.Pods, "pods started one after another, per runtime class")
	cmd.Flags().StringSliceVar(&classes, "runtime-class", nil, "runtime classes to measure besides the default (such as sandboxed)")
	return cmd
}
