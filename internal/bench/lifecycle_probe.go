package bench

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// GetProbe sends GETs to a cluster's apiserver at a steady rate and counts
// those that succeed: whether the API keeps answering through an upgrade.
// It uses one keep-alive client, as kubectl and controllers do, and retries
// only what the apiserver itself asks to be retried (an answer with
// Retry-After, as a member that is shutting down gives on a connection it
// still holds), once, as Kubernetes clients do; it counts those apart.
type GetProbe struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	ok      int
	failed  int
	retried int    // succeeded once retried after the apiserver's Retry-After
	first   string // the first failure
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
			p.count(get(hc, url))
		}
	}()
	return p, nil
}

// get GETs url, once more after the wait an answer's Retry-After asks for
// (at most 2 s); retried says it took the second.
func get(hc *http.Client, url string) (retried bool, err error) {
	resp, err := hc.Get(url)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return false, nil
	}
	after, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if perr != nil {
		return false, &statusError{resp.Status}
	}
	time.Sleep(min(time.Duration(after)*time.Second, 2*time.Second))
	resp, err = hc.Get(url)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return true, &statusError{resp.Status + " after a Retry-After"}
	}
	return true, nil
}

func (p *GetProbe) count(retried bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.ok++
		if retried {
			p.retried++
		}
		return
	}
	p.failed++
	if p.first == "" {
		p.first = time.Now().Format("15:04:05.000") + " " + err.Error()
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "answered " + e.status }

// Stop stops probing and says how many GETs succeeded of how many (and of
// those, how many after the apiserver's Retry-After), and the first failure.
func (p *GetProbe) Stop() (ok, total, retried int, firstFailure string) {
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.ok + p.failed, p.retried, p.first
}
