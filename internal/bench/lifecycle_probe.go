package bench

import (
	"context"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// GetProbe sends GETs to a cluster's apiserver at a steady rate and counts
// those that succeed: whether the API keeps answering through an upgrade.
// It uses one keep-alive client, as kubectl and controllers do, and no
// retries of its own.
type GetProbe struct {
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ok     int
	failed int
	first  string // the first failure
}

// ProbeGETs starts probing cfg's apiserver rate times a second.
func ProbeGETs(cfg *rest.Config, rate int) (*GetProbe, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: rt, Timeout: 2 * time.Second}
	url := cfg.Host + "/api/v1/namespaces/default"
	ctx, cancel := context.WithCancel(context.Background())
	p := &GetProbe{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.count(hc.Get(url))
		}
	}()
	return p, nil
}

func (p *GetProbe) count(resp *http.Response, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			p.ok++
			return
		}
		err = &statusError{resp.Status}
	}
	p.failed++
	if p.first == "" {
		p.first = time.Now().Format("15:04:05.000") + " " + err.Error()
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "answered " + e.status }

// Stop stops probing and says how many GETs succeeded of how many, and
// the first failure.
func (p *GetProbe) Stop() (ok, total int, firstFailure string) {
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.ok + p.failed, p.first
}
