package agent

import (
	"context"

	"k8s.io/client-go/informers"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// startNamespaceSync watches the cluster's namespaces and the hub's
// ClusterNamespaces of this cluster and syncs them on every change. It returns
// a function that asks for a sync.
func (a *agent) startNamespaceSync(ctx context.Context, hub client.Client) (func(), error) {
	t := newTrigger()
	handler := t.handler()
	hubNS := fv1.HubNamespace(a.current().Cluster)

	factory := informers.NewSharedInformerFactory(a.cluster, 0)
	if _, err := factory.Core().V1().Namespaces().Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	members := factory.Core().V1().Namespaces().Lister()
	factory.Start(ctx.Done())

	hubCache, err := cache.New(a.hubConfig(), cache.Options{Scheme: scheme(), DefaultNamespaces: map[string]cache.Config{hubNS: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := hubCache.GetInformer(ctx, &fv1.ClusterNamespace{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(handler); err != nil {
		return nil, err
	}
	go hubCache.Start(ctx)

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
