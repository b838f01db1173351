package agent

import (
	"context"

	"k8s.io/client-go/informers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// startNamespaceSync watches the cluster's namespaces and syncs them with the
// hub's ClusterNamespaces of this cluster on every change of either. It
// returns a function that asks for a sync.
// The caller starts factory.
func (a *agent) startNamespaceSync(ctx context.Context, hub client.Client, state *hubState, factory informers.SharedInformerFactory) (func(), error) {
	t := newTrigger()
	handler := t.handler()
	hubNS := fv1.HubNamespace(a.current().Cluster)

	if _, err := factory.Core().V1().Namespaces().Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	members := factory.Core().V1().Namespaces().Lister()

	state.onChange = append(state.onChange, t.poke)

	// Both sides are read from memory: the periodic sync costs neither
	// apiserver anything.
	go t.run(ctx, "namespace sync", func(ctx context.Context) error {
		onHub, fetched := state.namespaces()
		if !fetched {
			return nil // the fetch pokes
		}
		for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return ctx.Err()
			}
		}
		return syncNamespaces(ctx, members, onHub, a.cluster, hub, hubNS)
	})
	return t.poke, nil
}
