package agent

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
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

// run calls sync after every poke until ctx ends. A failed sync is retried
// after a wait that doubles from 1–2 s up to 10–20 s while it keeps
// failing, each drawn at random from its range: a fleet whose hub or
// cluster is overwhelmed does not come back at it every second, in step.
func (t trigger) run(ctx context.Context, what string, sync func(context.Context) error) {
	retry := syncRetry()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t:
		}
		err := sync(ctx)
		if err == nil || ctx.Err() != nil {
			retry = syncRetry()
			continue
		}
		wait := retry.Step()
		klog.InfoS(what+" failed; will retry", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		t.poke()
	}
}

func syncRetry() wait.Backoff {
	return wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 1, Steps: 8, Cap: 10 * time.Second}
}
