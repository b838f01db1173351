package executor

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// reportEvery spaces progress reports while a job runs.
const reportEvery = 2 * time.Second

// progress counts what a job did, and says so every reportEvery.
type progress struct {
	mu   sync.Mutex
	p    fv1.JobProgress
	last time.Time
	send func(fv1.JobProgress)
}

func newProgress(send func(fv1.JobProgress)) *progress {
	now := metav1.Now()
	pr := &progress{send: send, p: fv1.JobProgress{Phase: fv1.PhaseInProgress, StartTimestamp: &now}}
	pr.flush()
	return pr
}

// note records a warning or an error about one item (gr may be empty).
func (pr *progress) note(severity string, gr schema.GroupResource, ns, name, msg string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if severity == "Error" {
		pr.p.Errors++
	} else {
		pr.p.Warnings++
	}
	if len(pr.p.Messages) < fv1.MaxJobMessages {
		res := ""
		if gr.Resource != "" {
			res = gr.String()
		}
		pr.p.Messages = append(pr.p.Messages, fv1.JobMessage{Severity: severity, Resource: res, Namespace: ns, Name: name, Message: msg})
	}
}

func (pr *progress) warn(gr schema.GroupResource, ns, name, msg string) {
	pr.note("Warning", gr, ns, name, msg)
}
func (pr *progress) fail(gr schema.GroupResource, ns, name, msg string) {
	pr.note("Error", gr, ns, name, msg)
}

// add counts items found, done and skipped, and reports if it is time.
func (pr *progress) add(total, done, skipped int64) {
	pr.mu.Lock()
	pr.p.TotalItems += total
	pr.p.ItemsDone += done
	pr.p.ItemsSkipped += skipped
	due := time.Since(pr.last) >= reportEvery
	pr.mu.Unlock()
	if due {
		pr.flush()
	}
}

// flush reports now.
func (pr *progress) flush() {
	pr.mu.Lock()
	pr.last = time.Now()
	p := *pr.p.DeepCopy()
	pr.mu.Unlock()
	pr.send(p)
}

// end sets the final phase (PartiallyFailed when an item failed) and
// returns the final progress.
func (pr *progress) end(failed bool) fv1.JobProgress {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	now := metav1.Now()
	pr.p.CompletionTimestamp = &now
	switch {
	case failed:
		pr.p.Phase = fv1.PhaseFailed
	case pr.p.Errors > 0:
		pr.p.Phase = fv1.PhasePartiallyFailed
	default:
		pr.p.Phase = fv1.PhaseCompleted
	}
	return *pr.p.DeepCopy()
}
