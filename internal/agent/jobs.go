package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/executor"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// jobRunner runs the cluster's backups and restores: it fetches its jobs
// from the hub when the hub's change token says they changed, and runs
// them one at a time.
type jobRunner struct {
	rt   http.RoundTripper
	base string // the hub's agent endpoint
	ex   *executor.Runner
	t    trigger
	// refuse says why a job of a kind is not run here, or "".
	refuse func(kind string) string

	mu  sync.Mutex
	ran map[types.UID]bool // jobs this process started
}

// newJobRunner runs jobs in the cluster cfg reaches; nil for a simulated
// cluster, which has nothing to back up. A job refuse gives a reason for is
// reported failed with it instead of run.
func newJobRunner(rt http.RoundTripper, streamURL string, cfg *rest.Config, dyn dynamic.Interface, refuse func(kind string) string) (*jobRunner, error) {
	if cfg == nil {
		return nil, nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 0 // a list of many objects may take long
	// A restore writes with a few workers (executor.Workers); the
	// member's apiserver, not a client-side limiter, sets its pace.
	cfg.QPS, cfg.Burst = -1, 0
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	j := &jobRunner{rt: rt, base: strings.TrimSuffix(streamURL, heartbeat.StreamPath), t: newTrigger(), ran: map[types.UID]bool{}, refuse: refuse}
	j.ex = &executor.Runner{Dynamic: dyn, Discovery: dc, HubRT: rt, HubBase: j.base, Report: j.report}
	return j, nil
}

// run fetches and runs jobs after every poke until ctx ends.
func (j *jobRunner) run(ctx context.Context) {
	if j == nil {
		return
	}
	j.t.poke()
	j.t.run(ctx, "fetching backup and restore jobs", j.fetch)
}

func (j *jobRunner) poke() {
	if j != nil {
		j.t.poke()
	}
}

// fetch lists the cluster's open jobs and runs the new ones. A job the hub
// says is in progress that this process did not start was cut short by the
// agent's restart: it is reported failed rather than run twice.
func (j *jobRunner) fetch(ctx context.Context) error {
	list, err := j.list(ctx)
	if err != nil {
		return err
	}
	for _, job := range list.Jobs {
		j.mu.Lock()
		ran := j.ran[job.UID]
		j.ran[job.UID] = true
		j.mu.Unlock()
		switch {
		case ran:
		case job.Phase == fv1.PhaseInProgress:
			j.ex.Failed(ctx, job, "the agent restarted while the "+job.Kind+" ran, so it was cut short: create it again")
		case j.refuse != nil && j.refuse(job.Kind) != "":
			why := j.refuse(job.Kind)
			klog.InfoS("not running "+job.Kind, "name", job.Name, "reason", why)
			j.ex.Failed(ctx, job, why)
		default:
			klog.InfoS("running "+job.Kind, "name", job.Name)
			j.ex.Run(ctx, job)
			klog.InfoS(job.Kind+" done", "name", job.Name)
		}
	}
	return nil
}

func (j *jobRunner) list(ctx context.Context) (*jobs.List, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.base+jobs.ListPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("listing jobs: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	var list jobs.List
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("listing jobs: %v", err)
	}
	return &list, nil
}

// report posts rep to the hub. It returns an error only when sending it
// again may help: the hub could not be reached or was unavailable. A
// refusal (the job was deleted, say) is logged and dropped.
func (j *jobRunner) report(ctx context.Context, rep jobs.Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.base+jobs.ReportPath, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := j.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	err = fmt.Errorf("reporting %s %s: %s: %s", rep.Kind, rep.Name, resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return err
	}
	klog.InfoS("the hub refused a job report", "err", err)
	return nil
}
