package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newClusterGroupCmd is `flotilla clustergroup`.
func newClusterGroupCmd() *cobra.Command {
	return newCollectionCmd[fv1.ClusterGroup](collection[fv1.ClusterGroup]{
		use: "clustergroup", noun: "cluster group", plural: "cluster groups",
		deleteShort: "Delete a cluster group that has no clusters",
		header:      []string{"NAME", "CLUSTERS", "DESCRIPTION", "AGE"},
		row: func(g fv1.ClusterGroup) []string {
			return []string{g.Name, strconv.Itoa(int(g.Status.Clusters)), cell(g.Spec.Description), age(g.CreationTimestamp)}
		},
		list: fleet.ListClusterGroups,
		create: func(ctx context.Context, c client.Client, name, description string) error {
			_, err := fleet.CreateClusterGroup(ctx, c, name, description)
			return err
		},
		delete: fleet.DeleteClusterGroup,
	})
}
