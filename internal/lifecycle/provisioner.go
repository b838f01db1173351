package lifecycle

import (
	"context"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Provisioner is a provider that has clusters made elsewhere (Cluster API
// on a management cluster): it carries a Cluster's lifecycle spec there and
// reads back where the cluster stands.
type Provisioner interface {
	// Reconcile moves c towards its spec, one step, and says where it
	// stands, with the cluster's admin kubeconfig once there is one.
	Reconcile(ctx context.Context, c *fv1.Cluster) (Result, error)
	// Delete has the cluster deleted; gone says it is.
	Delete(ctx context.Context, c *fv1.Cluster) (gone bool, err error)
}

// Result is where a provisioned cluster stands.
type Result struct {
	Status fv1.LifecycleStatus
	// Kubeconfig is the cluster's admin kubeconfig, once it has one.
	Kubeconfig []byte
}
