package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

const (
	listNamespacesCmd = "flotilla namespace list"
	listClustersCmd   = "flotilla cluster list"
)

// ListNamespaces returns the namespaces of attached clusters as the hub
// records them, optionally only one cluster's or one workspace's.
func ListNamespaces(ctx context.Context, c client.Client, cluster, workspace string) ([]fv1.ClusterNamespace, error) {
	var opts []client.ListOption
	if cluster != "" {
		if err := c.Get(ctx, client.ObjectKey{Name: cluster}, &fv1.Cluster{}); err != nil {
			return nil, explain(err, "cluster", cluster, listClustersCmd)
		}
		opts = append(opts, client.InNamespace(fv1.HubNamespace(cluster)))
	}
	var l fv1.ClusterNamespaceList
	if err := c.List(ctx, &l, opts...); err != nil {
		return nil, err
	}
	out := l.Items[:0]
	for _, n := range l.Items {
		if workspace == "" || n.Spec.Workspace == workspace {
			setKind(&n, "ClusterNamespace")
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ClusterOf returns the cluster a ClusterNamespace belongs to.
func ClusterOf(n *fv1.ClusterNamespace) string { return fv1.ClusterOfHubNamespace(n.Namespace) }

// CreateNamespace creates namespace name in cluster for workspace; the
// cluster's agent then creates it in the cluster.
func CreateNamespace(ctx context.Context, c client.Client, cluster, name, workspace string) (*fv1.ClusterNamespace, error) {
	var cl fv1.Cluster
	if err := c.Get(ctx, client.ObjectKey{Name: cluster}, &cl); err != nil {
		return nil, explain(err, "cluster", cluster, listClustersCmd)
	}
	if cl.Spec.ReadOnly {
		return nil, fmt.Errorf("cluster %s is attached read-only: its agent may not create namespaces in it; create %s in the cluster itself and Flotilla finds it (in the default workspace)", cluster, name)
	}
	if workspace == "" {
		workspace = fv1.DefaultName
	}
	if err := c.Get(ctx, client.ObjectKey{Name: workspace}, &fv1.Workspace{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("workspace %q does not exist; create it with 'flotilla workspace create %s'", workspace, workspace)
		}
		return nil, err
	}
	n := &fv1.ClusterNamespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fv1.HubNamespace(cluster), Finalizers: []string{fv1.NamespaceFinalizer}},
		Spec:       fv1.ClusterNamespaceSpec{Workspace: workspace},
	}
	if err := createInHubNamespace(ctx, c, n); err != nil {
		if apierrors.IsAlreadyExists(err) {
			var cur fv1.ClusterNamespace
			if c.Get(ctx, client.ObjectKeyFromObject(n), &cur) == nil {
				return nil, fmt.Errorf("namespace %q already exists in cluster %q (workspace %q); to move it, delete it and create it again", name, cluster, cur.Spec.Workspace)
			}
		}
		return nil, explain(err, "namespace", cluster+"/"+name, listNamespacesCmd)
	}
	setKind(n, "ClusterNamespace")
	return n, nil
}

// hubNamespaceWait is how long a create waits for a just-attached
// cluster's namespace on the hub, which the hub makes moments after attach.
const hubNamespaceWait = 10 * time.Second

// createInHubNamespace creates n, waiting briefly for its cluster's hub
// namespace: without it the create is refused as not found, which would
// read as if the namespace being created were missing.
func createInHubNamespace(ctx context.Context, c client.Client, n *fv1.ClusterNamespace) error {
	var err error
	waitErr := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, hubNamespaceWait, true, func(ctx context.Context) (bool, error) {
		if err = c.Create(ctx, n); !apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if waitErr != nil && apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s's namespace %s on the hub did not appear within %s: the hub makes it when the cluster attaches; see 'flotilla cluster get %s' and the hub's log", ClusterOf(n), n.Namespace, hubNamespaceWait, ClusterOf(n))
	}
	return err
}

// DeleteNamespace deletes namespace name in cluster: the agent deletes it in
// the cluster, then the hub forgets it.
func DeleteNamespace(ctx context.Context, c client.Client, cluster, name string) error {
	n := &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fv1.HubNamespace(cluster)}}
	var cl fv1.Cluster
	if err := c.Get(ctx, client.ObjectKey{Name: cluster}, &cl); err != nil {
		return explain(err, "cluster", cluster, listClustersCmd)
	}
	if cl.Spec.ReadOnly {
		return fmt.Errorf("cluster %s is attached read-only: its agent may not delete namespaces in it; delete %s in the cluster itself and Flotilla forgets it", cluster, name)
	}
	return explain(c.Delete(ctx, n), "namespace", cluster+"/"+name, listNamespacesCmd)
}
