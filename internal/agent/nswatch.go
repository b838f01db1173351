package agent

import (
	"context"

	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// hubCache watches the cluster's own hub namespace; the agent's syncs share
// it, so each kind is one watch on the hub.
func (a *agent) hubCache() (cache.Cache, error) {
	hubNS := fv1.HubNamespace(a.current().Cluster)
	return cache.New(a.hubConfig(), cache.Options{Scheme: scheme(), DefaultNamespaces: map[string]cache.Config{hubNS: {}}})
}

// watchHub calls handler on every change of obj's kind in the hub cache.
func watchHub(ctx context.Context, hubCache cache.Cache, obj client.Object, handler toolscache.ResourceEventHandler) error {
	inf, err := hubCache.GetInformer(ctx, obj)
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(handler)
	return err
}

// startNamespaceSync watches the cluster's namespaces and the hub's
// ClusterNamespaces of this cluster and syncs them on every change. It returns
// a function that asks for a sync.
func (a *agent) startNamespaceSync(ctx context.Context, hub client.Client, hubCache cache.Cache) (func(), error) {
	t := newTrigger()
	handler := t.handler()
	hubNS := fv1.HubNamespace(a.current().Cluster)

	factory := informers.NewSharedInformerFactory(a.cluster, 0)
	if _, err := factory.Core().V1().Namespaces().Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	members := factory.Core().V1().Namespaces().Lister()
	factory.Start(ctx.Done())

	if err := watchHub(ctx, hubCache, &fv1.ClusterNamespace{}, handler); err != nil {
		return nil, err
	}

	// Both sides are read from the informers' caches: the periodic sync
	// costs neither apiserver anything.
	go t.run(ctx, "namespace sync", func(ctx context.Context) error {
		if !hubCache.WaitForCacheSync(ctx) {
			return ctx.Err()
		}
		for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return ctx.Err()
			}
		}
		return syncNamespaces(ctx, members, hubCache, a.cluster, hub, hubNS)
	})
	return t.poke, nil
}
