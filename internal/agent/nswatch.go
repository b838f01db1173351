package agent

import (
	"context"
	"time"

	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// startNamespaceSync watches the cluster's namespaces and the hub's
// ClusterNamespaces of this cluster and syncs them on every change. It returns
// a function that asks for a sync.
func (a *agent) startNamespaceSync(ctx context.Context, hub client.Client) (func(), error) {
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	hubNS := fv1.HubNamespace(a.current().Cluster)

	factory := informers.NewSharedInformerFactory(a.cluster, 0)
	if _, err := factory.Core().V1().Namespaces().Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
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

	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-trigger:
			}
			if err := syncNamespaces(ctx, a.cluster, hub, hubNS); err != nil && ctx.Err() == nil {
				klog.InfoS("namespace sync failed; will retry", "err", err)
				time.Sleep(time.Second)
				poke()
			}
		}
	}()
	return poke, nil
}
