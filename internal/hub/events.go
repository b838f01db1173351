package hub

import (
	"context"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"flotilla.dev/flotilla/internal/controller"
)

// eventRecorder returns the recorder of the hub's Events, which writes them
// over hc (the manager's client, and its connections), and what stops it
// once the hub's controllers have.
//
// It is client-go's core/v1 recorder, not the events.k8s.io one the
// manager offers: that one keeps every Event it sent for six minutes or
// more, to fold repeats into a series, which on a hub attaching 10,000
// clusters (two Events each) held 20,000 Events on its heap. This one folds
// repeats in caches of bounded size. Both write the same objects, which
// kubectl describe shows.
func eventRecorder(ctx context.Context, cfg *rest.Config, hc *http.Client) (record.EventRecorder, func(), error) {
	cs, err := typedcorev1.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, err
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.Events("")})
	return b.NewRecorder(Scheme(), corev1.EventSource{Component: controller.EventSource}), b.Shutdown, nil
}
