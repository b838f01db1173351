package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// collection is a kind people list, create and delete by name: cluster
// groups and workspaces.
type collection[T any] struct {
	use, noun, plural string // e.g. clustergroup, cluster group, cluster groups
	deleteShort       string
	header            []string
	row               func(T) []string
	list              func(context.Context, client.Client) ([]T, error)
	create            func(ctx context.Context, c client.Client, name, description string) error
	delete            func(ctx context.Context, c client.Client, name string) error
}

// newCollectionCmd builds `flotilla USE list|create|delete` for k.
func newCollectionCmd[T any, P interface {
	*T
	metav1.Object
}](k collection[T]) *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     k.use,
		Aliases: []string{k.use + "s"},
		Short:   "List, create and delete " + k.plural,
	}
	o.addFlags(cmd.PersistentFlags())

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List " + k.plural,
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				items, err := k.list(ctx, cl)
				if err != nil {
					return err
				}
				if format != "table" {
					return printObjects[T, P](c.OutOrStdout(), format, false, items)
				}
				rows := make([][]string, len(items))
				for i, it := range items {
					rows[i] = k.row(it)
				}
				return table(c.OutOrStdout(), k.header, rows)
			})
		},
	}
	addOutputFlag(list, &format)

	var description string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty " + k.noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := k.create(ctx, cl, args[0], description); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s created\n", k.noun, args[0])
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "free text for people")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: k.deleteShort,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := k.delete(ctx, cl, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s deleted\n", k.noun, args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}
