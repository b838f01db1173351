package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/localplane"
)

func newVersionsCmd() *cobra.Command {
	var build string
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "List the Kubernetes versions each provider can run",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if build != "" {
				bin, err := kubebin.Binary(c.Context(), build, func(format string, args ...any) {
					fmt.Fprintf(c.ErrOrStderr(), format+"\n", args...)
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "Kubernetes %s runs from %s\n", build, bin)
				return nil
			}
			var rows [][]string
			for _, v := range kubebin.Supported {
				how := "built on first use (once per machine, about 12 minutes), then cached"
				switch {
				case v == kubebin.Embedded():
					how = "embedded in this binary"
				case kubebin.Cached(v):
					how = "built and cached on this machine"
				}
				rows = append(rows, []string{"local", v, how})
			}
			return table(c.OutOrStdout(), []string{"PROVIDER", "VERSION", "COMPONENTS"}, rows)
		},
	}
	cmd.Flags().StringVar(&build, "build", "", "build (or find) the components of this version now, rather than on first use")
	return cmd
}

// newLocalPlaneCmd runs the supervisor of one cluster of the local provider.
func newLocalPlaneCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "localplane",
		Short:  "Supervise one local cluster of the local provider (started by the hub)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return localplane.Run(signalContext(), dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the cluster's directory")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
