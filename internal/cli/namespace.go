package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newNamespaceCmd is `flotilla namespace`: namespaces of attached clusters
// and the workspaces they belong to.
func newNamespaceCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "namespace",
		Aliases: []string{"namespaces", "ns"},
		Short:   "List, create and delete namespaces of attached clusters",
	}
	o.addFlags(cmd.PersistentFlags())

	var format, cluster, workspace string
	list := &cobra.Command{
		Use:   "list",
		Short: "List namespaces with their cluster and workspace",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				nss, err := fleet.ListNamespaces(ctx, cl, cluster, workspace)
				if err != nil {
					return err
				}
				if format != "table" {
					return printObjects(c.OutOrStdout(), format, false, nss)
				}
				rows := make([][]string, len(nss))
				for i, n := range nss {
					rows[i] = []string{fleet.ClusterOf(&n), n.Name, n.Spec.Workspace, cell(n.Status.Phase), age(n.CreationTimestamp)}
				}
				return table(c.OutOrStdout(), []string{"CLUSTER", "NAME", "WORKSPACE", "PHASE", "AGE"}, rows)
			})
		},
	}
	addOutputFlag(list, &format)
	list.Flags().StringVar(&cluster, "cluster", "", "only this cluster's namespaces")
	list.Flags().StringVar(&workspace, "workspace", "", "only this workspace's namespaces")

	var createCluster, createWorkspace string
	create := &cobra.Command{
		Use:   "create NAME --cluster C [--workspace W]",
		Short: "Create a namespace in a cluster for a workspace (the agent creates it there)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			clusterName, name, err := clusterAndName(createCluster, args[0])
			if err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				n, err := fleet.CreateNamespace(ctx, cl, clusterName, name, createWorkspace)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "namespace %s/%s created in workspace %s\n", clusterName, name, n.Spec.Workspace)
				return nil
			})
		},
	}
	create.Flags().StringVar(&createCluster, "cluster", "", "cluster to create it in")
	create.Flags().StringVar(&createWorkspace, "workspace", fv1.DefaultName, "workspace it belongs to")

	var deleteCluster string
	del := &cobra.Command{
		Use:   "delete NAME --cluster C",
		Short: "Delete a namespace in a cluster (the agent deletes it there)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			clusterName, name, err := clusterAndName(deleteCluster, args[0])
			if err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := fleet.DeleteNamespace(ctx, cl, clusterName, name); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "namespace %s/%s deleted\n", clusterName, name)
				return nil
			})
		},
	}
	del.Flags().StringVar(&deleteCluster, "cluster", "", "cluster the namespace is in")
	cmd.AddCommand(list, create, del)
	return cmd
}

// clusterAndName accepts NAME with --cluster C, or C/NAME.
func clusterAndName(flag, arg string) (string, string, error) {
	if c, n, ok := strings.Cut(arg, "/"); ok && flag == "" {
		return c, n, nil
	}
	if flag == "" {
		return "", "", fmt.Errorf("which cluster? pass --cluster C (or name the namespace as C/%s)", arg)
	}
	return flag, arg, nil
}
