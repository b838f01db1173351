package executor

import (
	"context"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backoff"
	"flotilla.dev/flotilla/internal/backup/jobs"
)

// Runner runs jobs in one member cluster.
type Runner struct {
	// Dynamic reads and writes the cluster's objects.
	Dynamic dynamic.Interface
	// Discovery lists what the cluster serves; it must not cache (a
	// restore's CRDs add resources mid-way).
	Discovery discovery.DiscoveryInterface
	// HubRT and HubBase reach the hub's agent endpoint (hub locations).
	HubRT   http.RoundTripper
	HubBase string
	// TempDir holds a restore's archive while it runs; "" is the system's.
	TempDir string
	// Report sends a job's report to the hub; an error says it is worth
	// sending again (the hub could not be reached or was unavailable).
	Report func(context.Context, jobs.Report) error
}

// Run runs job to its end and reports how it went; the last report is
// final (Failed, PartiallyFailed, Completed, or for a backup, Uploaded).
func (r *Runner) Run(ctx context.Context, job jobs.Job) {
	switch job.Kind {
	case jobs.KindBackup:
		r.backup(ctx, job)
	case jobs.KindRestore:
		r.restore(ctx, job)
	default:
		r.Failed(ctx, job, "this agent does not know jobs of kind "+job.Kind+": upgrade it")
	}
}

// Failed reports job failed with msg.
func (r *Runner) Failed(ctx context.Context, job jobs.Job, msg string) {
	pr := &progress{send: func(fv1.JobProgress) {}}
	pr.fail(emptyGR, "", "", msg)
	r.final(ctx, job, jobs.Report{Progress: pr.end(true)})
}

// progressOf starts job's progress, each report sent as it comes: a lost
// one is followed by the next.
func (r *Runner) progressOf(ctx context.Context, job jobs.Job) *progress {
	return newProgress(func(p fv1.JobProgress) {
		_ = r.Report(ctx, jobs.Report{Kind: job.Kind, Name: job.Name, UID: job.UID, Progress: p})
	})
}

// final sends job's last report, again and again while the hub cannot be
// reached (it may be restarting), for up to finalFor.
func (r *Runner) final(ctx context.Context, job jobs.Job, rep jobs.Report) {
	rep.Kind, rep.Name, rep.UID = job.Kind, job.Name, job.UID
	ctx, cancel := context.WithTimeout(ctx, finalFor)
	defer cancel()
	_ = backoff.Until(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Cap: 30 * time.Second}, func(ctx context.Context) (bool, error) {
		return r.Report(ctx, rep) == nil, nil
	})
}

// finalFor bounds the tries at a final report.
const finalFor = 5 * time.Minute
