package fleet

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

const listGroupsCmd = "flotilla clustergroup list"

// ListClusterGroups returns every cluster group, sorted by name.
func ListClusterGroups(ctx context.Context, c client.Client) ([]fv1.ClusterGroup, error) {
	var l fv1.ClusterGroupList
	if err := c.List(ctx, &l); err != nil {
		return nil, err
	}
	for i := range l.Items {
		setKind(&l.Items[i], "ClusterGroup")
	}
	return l.Items, nil
}

// CreateClusterGroup creates an empty cluster group. The apiserver validates
// the name; its message is returned as it is.
func CreateClusterGroup(ctx context.Context, c client.Client, name, description string) (*fv1.ClusterGroup, error) {
	g := &fv1.ClusterGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       fv1.ClusterGroupSpec{Description: description},
	}
	if err := c.Create(ctx, g); err != nil {
		return nil, explain(err, "cluster group", name, listGroupsCmd)
	}
	setKind(g, "ClusterGroup")
	return g, nil
}

// DeleteClusterGroup deletes an empty cluster group. It refuses the default
// group and groups that still have clusters (other than ones being detached),
// which would otherwise point at a group that no longer exists.
func DeleteClusterGroup(ctx context.Context, c client.Client, name string) error {
	if name == fv1.DefaultName {
		return fmt.Errorf("cannot delete cluster group %q: the default cluster group always exists", name)
	}
	var g fv1.ClusterGroup
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &g); err != nil {
		return explain(err, "cluster group", name, listGroupsCmd)
	}
	clusters, err := ListClusters(ctx, c)
	if err != nil {
		return err
	}
	var members []string
	for _, cl := range clusters {
		// A cluster being detached is on its way out; waiting for its agent
		// to clean up should not block the group.
		if cl.Spec.Group == name && cl.DeletionTimestamp == nil {
			members = append(members, cl.Name)
		}
	}
	if len(members) > 0 {
		return fmt.Errorf("cluster group %q still has %s: %s; move or detach them first",
			name, count(len(members), "cluster"), summarise(members, 10))
	}
	// The UID precondition keeps a group re-created meanwhile from being deleted.
	err = c.Delete(ctx, &g, client.Preconditions{UID: &g.UID})
	return explain(client.IgnoreNotFound(err), "cluster group", name, listGroupsCmd)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// summarise joins names, eliding all but the first max so a message stays one
// readable line in a large fleet.
func summarise(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}
