package localplane

import (
	"context"
	"sync"

	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/sandbox"
)

// sandboxBuild has the sandbox's programs once they are built: at once if
// this machine built them before, else after a build in the background
// (minutes, once per machine), during which real nodes run without the
// sandboxed runtime class. A failed build leaves them without it, and says
// why.
type sandboxBuild struct {
	ctx     context.Context
	once    sync.Once
	mu      sync.Mutex
	bins    *sandbox.Binaries
	failure string
}

// get returns the programs, or nil while they are not built.
func (b *sandboxBuild) get() *sandbox.Binaries {
	b.once.Do(func() {
		if sandbox.Cached() {
			b.build()
			return
		}
		go b.build()
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bins
}

func (b *sandboxBuild) build() {
	bins, err := sandbox.Build(b.ctx, func(format string, args ...any) { klog.Infof(format, args...) })
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failure = "the sandboxed runtime class is not offered: " + err.Error()
		klog.ErrorS(err, "building the sandbox")
		return
	}
	b.bins = &bins
}

// message says why the sandbox is not offered, if it is not.
func (b *sandboxBuild) message() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.bins != nil:
		return ""
	case b.failure != "":
		return b.failure
	}
	return "building the sandboxed runtime class (gVisor; once per machine, a few minutes)"
}
