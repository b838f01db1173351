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

// newWorkspaceCmd is `flotilla workspace`.
func newWorkspaceCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "workspace",
		Aliases: []string{"workspaces"},
		Short:   "List, create and delete workspaces",
	}
	o.addFlags(cmd.PersistentFlags())

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List workspaces",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				workspaces, err := fleet.ListWorkspaces(ctx, cl)
				if err != nil {
					return err
				}
				if format != "table" {
					return printObjects(c.OutOrStdout(), format, false, workspaces)
				}
				return table(c.OutOrStdout(), []string{"NAME", "NAMESPACES", "DESCRIPTION", "AGE"}, workspaceRows(workspaces))
			})
		},
	}
	addOutputFlag(list, &format)

	var description string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if _, err := fleet.CreateWorkspace(ctx, cl, args[0], description); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "workspace %s created\n", args[0])
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "free text for people")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := fleet.DeleteWorkspace(ctx, cl, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "workspace %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

func workspaceRows(workspaces []fv1.Workspace) [][]string {
	rows := make([][]string, len(workspaces))
	for i, w := range workspaces {
		rows[i] = []string{w.Name, strconv.Itoa(int(w.Status.Namespaces)), cell(w.Spec.Description), age(w.CreationTimestamp)}
	}
	return rows
}
