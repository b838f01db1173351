package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newWorkspaceCmd is `flotilla workspace`.
func newWorkspaceCmd() *cobra.Command {
	return newCollectionCmd[fv1.Workspace](collection[fv1.Workspace]{
		use: "workspace", noun: "workspace", plural: "workspaces",
		deleteShort: "Delete a workspace that has no namespaces",
		header:      []string{"NAME", "NAMESPACES", "DESCRIPTION", "AGE"},
		row: func(w fv1.Workspace) []string {
			return []string{w.Name, strconv.Itoa(int(w.Status.Namespaces)), cell(w.Spec.Description), age(w.CreationTimestamp)}
		},
		list: fleet.ListWorkspaces,
		create: func(ctx context.Context, c client.Client, name, description string) error {
			_, err := fleet.CreateWorkspace(ctx, c, name, description)
			return err
		},
		delete: fleet.DeleteWorkspace,
	})
}
