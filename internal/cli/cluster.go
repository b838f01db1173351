package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newClusterCmd is `flotilla cluster`. Its subcommands share --hub-kubeconfig;
// those that change a cluster's membership come from addClusterLifecycleCmds.
func newClusterCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "cluster",
		Aliases: []string{"clusters"},
		Short:   "List and inspect the fleet's clusters",
	}
	o.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newClusterListCmd(o), newClusterGetCmd(o))
	addClusterLifecycleCmds(cmd, o)
	addClusterProvisionCmds(cmd, o)
	return cmd
}

func newClusterListCmd(o *hubOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the clusters attached to the hub",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				clusters, err := fleet.ListClusters(ctx, cl)
				if err != nil {
					return err
				}
				return printClusters(c, format, false, clusters)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newClusterGetCmd(o *hubOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				cluster, err := fleet.GetCluster(ctx, cl, args[0])
				if err != nil {
					return err
				}
				return printClusters(c, format, true, []fv1.Cluster{*cluster})
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func printClusters(c *cobra.Command, format string, single bool, clusters []fv1.Cluster) error {
	if format != "table" {
		return printObjects(c.OutOrStdout(), format, single, clusters)
	}
	rows := make([][]string, len(clusters))
	for i, cl := range clusters {
		health := cl.Status.Health
		if health == "" {
			health = fv1.HealthUnknown
		}
		rows[i] = []string{cl.Name, cell(cl.Spec.Group), string(health), cell(cl.Status.KubernetesVersion), nodes(cl.Status.Nodes), age(cl.CreationTimestamp)}
	}
	return table(c.OutOrStdout(), []string{"NAME", "GROUP", "HEALTH", "VERSION", "NODES", "AGE"}, rows)
}

// nodes shows ready/total, or 0 before the agent has counted any.
func nodes(n fv1.NodeCounts) string {
	if n.Total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%d", n.Ready, n.Total)
}

// addOutputFlag registers -o for commands that print objects.
func addOutputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", "table", "output format: table, yaml or json")
}
