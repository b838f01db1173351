package fleet

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// ListClusters returns every cluster on the hub, sorted by name.
func ListClusters(ctx context.Context, c client.Client) ([]fv1.Cluster, error) {
	var l fv1.ClusterList
	if err := c.List(ctx, &l); err != nil {
		return nil, err
	}
	for i := range l.Items {
		setKind(&l.Items[i], "Cluster")
	}
	return l.Items, nil
}

// GetCluster returns the cluster called name.
func GetCluster(ctx context.Context, c client.Client, name string) (*fv1.Cluster, error) {
	var cl fv1.Cluster
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &cl); err != nil {
		return nil, explain(err, "cluster", name, listClustersCmd)
	}
	setKind(&cl, "Cluster")
	return &cl, nil
}
