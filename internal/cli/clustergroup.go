package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newClusterGroupCmd is `flotilla clustergroup`.
func newClusterGroupCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "clustergroup",
		Aliases: []string{"clustergroups"},
		Short:   "List, create and delete cluster groups",
	}
	o.addFlags(cmd.PersistentFlags())

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List cluster groups",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				groups, err := fleet.ListClusterGroups(ctx, cl)
				if err != nil {
					return err
				}
				if format != "table" {
					return printObjects(c.OutOrStdout(), format, false, groups)
				}
				return table(c.OutOrStdout(), []string{"NAME", "CLUSTERS", "DESCRIPTION", "AGE"}, groupRows(groups))
			})
		},
	}
	addOutputFlag(list, &format)

	var description string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty cluster group",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if _, err := fleet.CreateClusterGroup(ctx, cl, args[0], description); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster group %s created\n", args[0])
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "free text for people")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a cluster group that has no clusters",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := fleet.DeleteClusterGroup(ctx, cl, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster group %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

func groupRows(groups []fv1.ClusterGroup) [][]string {
	rows := make([][]string, len(groups))
	for i, g := range groups {
		rows[i] = []string{g.Name, strconv.Itoa(int(g.Status.Clusters)), cell(g.Spec.Description), age(g.CreationTimestamp)}
	}
	return rows
}
