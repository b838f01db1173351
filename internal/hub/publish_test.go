package hub_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
)

// A leader that cannot write hub info for a while (etcd electing a new
// leader, the apiserver restarting) keeps trying instead of stopping the
// hub, which is what a returned error would do.
func TestHubInfoIsPublishedThroughFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	real, err := client.NewWithWatch(env.Hub.Config, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	failures := 3
	cl := interceptor.NewClient(real, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if failures > 0 {
				failures--
				return apierrors.NewServiceUnavailable("etcdserver: leader changed")
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	info := map[string]string{"published-through-failures": t.Name()}
	if err := hub.KeepPublishing(ctx, cl, info); err != nil {
		t.Fatalf("gave up: %v", err)
	}
	if failures != 0 {
		t.Fatalf("%d failures left: the writes were not tried", failures)
	}
	var cm corev1.ConfigMap
	if err := real.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["published-through-failures"] != t.Name() {
		t.Fatalf("hub info not written: %v", cm.Data)
	}
	delete(cm.Data, "published-through-failures")
	if err := real.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	// A stopped hub stops trying and reports no error.
	cancel()
	failures = 1 << 30
	if err := hub.KeepPublishing(ctx, cl, map[string]string{"published-through-failures": "again"}); err != nil {
		t.Fatalf("after the hub stopped: %v", err)
	}
}
