package agent

import (
	"context"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// trigger coalesces requests for a sync: however many events arrive while a
// sync runs, one more sync follows.
type trigger chan struct{}

func newTrigger() trigger { return make(trigger, 1) }

func (t trigger) poke() {
	select {
	case t <- struct{}{}:
	default:
	}
}

// handler pokes t on any change of a watched object.
func (t trigger) handler() toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { t.poke() },
		UpdateFunc: func(any, any) { t.poke() },
		DeleteFunc: func(any) { t.poke() },
	}
}

// run calls sync after every poke until ctx ends, retrying a failed sync
// after a second.
func (t trigger) run(ctx context.Context, what string, sync func(context.Context) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t:
		}
		if err := sync(ctx); err != nil && ctx.Err() == nil {
			klog.InfoS(what+" failed; will retry", "err", err)
			time.Sleep(time.Second)
			t.poke()
		}
	}
}
