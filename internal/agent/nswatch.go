package agent

import (
	"context"

	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// startNamespaceSync watches the cluster's namespaces and syncs them with the
// hub's ClusterNamespaces of this cluster on every change of either. It
// returns a function that asks for a sync.
// The caller runs inf.
func (a *agent) startNamespaceSync(ctx context.Context, hub *hubClient, state *hubState, inf toolscache.SharedIndexInformer) (func(), error) {
	t := newTrigger()
	handler := t.handler()

	if _, err := inf.AddEventHandler(handler); err != nil {
		return nil, err
	}
	members := corelisters.NewNamespaceLister(inf.GetIndexer())

	state.onNamespaces = append(state.onNamespaces, t.poke)

	// Both sides are read from memory: the periodic sync costs neither
	// apiserver anything.
	go t.run(ctx, "namespace sync", func(ctx context.Context) error {
		onHub, fetched := state.namespaces()
		if !fetched {
			return nil // the fetch pokes
		}
		if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return ctx.Err()
		}
		changed, err := syncNamespaces(ctx, members, onHub, a.dyn, hub, state, a.readOnly.Load())
		if changed {
			t.poke()
		}
		return err
	})
	return t.poke, nil
}
