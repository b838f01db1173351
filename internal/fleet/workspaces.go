package fleet

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

const listWorkspacesCmd = "flotilla workspace list"

// ListWorkspaces returns every workspace, sorted by name.
func ListWorkspaces(ctx context.Context, c client.Client) ([]fv1.Workspace, error) {
	var l fv1.WorkspaceList
	if err := c.List(ctx, &l); err != nil {
		return nil, err
	}
	for i := range l.Items {
		setKind(&l.Items[i], "Workspace")
	}
	return l.Items, nil
}

// CreateWorkspace creates an empty workspace. The apiserver validates the
// name; its message is returned as it is.
func CreateWorkspace(ctx context.Context, c client.Client, name, description string) (*fv1.Workspace, error) {
	w := &fv1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       fv1.WorkspaceSpec{Description: description},
	}
	if err := c.Create(ctx, w); err != nil {
		return nil, explain(err, "workspace", name, listWorkspacesCmd)
	}
	setKind(w, "Workspace")
	return w, nil
}

// DeleteWorkspace deletes a workspace other than the default one.
func DeleteWorkspace(ctx context.Context, c client.Client, name string) error {
	if name == fv1.DefaultName {
		return fmt.Errorf("cannot delete workspace %q: the default workspace always exists", name)
	}
	var w fv1.Workspace
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &w); err != nil {
		return explain(err, "workspace", name, listWorkspacesCmd)
	}
	nss, err := ListNamespaces(ctx, c, "", name)
	if err != nil {
		return err
	}
	var members []string
	for _, n := range nss {
		if n.DeletionTimestamp == nil {
			members = append(members, fv1.ClusterOfHubNamespace(n.Namespace)+"/"+n.Name)
		}
	}
	if len(members) > 0 {
		return fmt.Errorf("workspace %q still has %s: %s; delete them first",
			name, count(len(members), "namespace"), summarise(members, 10))
	}
	err = c.Delete(ctx, &w, client.Preconditions{UID: &w.UID})
	return explain(client.IgnoreNotFound(err), "workspace", name, listWorkspacesCmd)
}
