package localplane

import (
	"context"
	"sync"

	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/kubebin"
)

// binaries finds each version's component binary, building those not
// built yet in the background: a first build takes minutes, and the
// supervisor keeps the rest of the cluster running meanwhile.
type binaries struct {
	ctx  context.Context
	mu   sync.Mutex
	bins map[string]string
	errs map[string]error
	busy map[string]bool
}

func newBinaries(ctx context.Context) *binaries {
	return &binaries{ctx: ctx, bins: map[string]string{}, errs: map[string]error{}, busy: map[string]bool{}}
}

// get returns version v's binary, or "" with c's message saying what it
// waits for (or, for a build that failed, c marked Failed with why).
func (b *binaries) get(v string, c *component) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bin := b.bins[v]; bin != "" {
		return bin
	}
	if kubebin.Cached(v) {
		// At hand: no build, no wait.
		bin, err := kubebin.Binary(b.ctx, v, nil)
		if err == nil {
			b.bins[v] = bin
			return bin
		}
		b.errs[v] = err
	}
	if err := b.errs[v]; err != nil {
		c.quick, c.message = crashLoop, c.name+": no binary for Kubernetes "+v+": "+err.Error()
		return ""
	}
	c.message = c.name + ": waiting for the components of Kubernetes " + v + " to be built (once per machine, about 12 minutes)"
	if !b.busy[v] {
		b.busy[v] = true
		go b.build(v)
	}
	return ""
}

func (b *binaries) build(v string) {
	bin, err := kubebin.Binary(b.ctx, v, func(format string, args ...any) { klog.Infof(format, args...) })
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy[v] = false
	if err != nil {
		b.errs[v] = err
		return
	}
	b.bins[v] = bin
}
