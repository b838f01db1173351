package jobserve

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
)

// reportBackup takes an agent's progress on a backup of its cluster. A
// backup's agent ends it only as Failed; once it says the archive is
// uploaded, the hub finishes it (the metadata is the hub's to write).
func (s *Server) reportBackup(ctx context.Context, cluster string, rep jobs.Report) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var b fv1.Backup
		if err := s.Client.Get(ctx, client.ObjectKey{Name: rep.Name}, &b); err != nil {
			return err
		}
		if b.Spec.Cluster != cluster || b.UID != rep.UID {
			return forbidden("backup %s is not a job of cluster %s", rep.Name, cluster)
		}
		if !OpenBackup(&b) {
			return statusError{http.StatusConflict, "backup " + rep.Name + " is no longer open (" + string(b.Status.Phase) + ")"}
		}
		p := rep.Progress
		if p.Phase != fv1.PhaseFailed {
			p.Phase = fv1.PhaseInProgress
		}
		take(&b.Status.JobProgress, p)
		reason, msg := fv1.ReasonInProgress, "cluster "+cluster+"'s agent is backing it up"
		switch {
		case p.Phase == fv1.PhaseFailed:
			reason, msg = string(fv1.PhaseFailed), failure(p)
		case rep.Uploaded:
			b.Status.Uploaded, b.Status.Size, b.Status.Checksum = true, rep.Size, rep.Checksum
			reason, msg = fv1.ReasonUploaded, "the archive is stored; the hub writes its metadata"
		}
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
			Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: b.Generation,
		})
		return s.Client.Status().Update(ctx, &b)
	})
}

// reportRestore takes an agent's progress on a restore into its cluster.
func (s *Server) reportRestore(ctx context.Context, cluster string, rep jobs.Report) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var r fv1.Restore
		if err := s.Client.Get(ctx, client.ObjectKey{Name: rep.Name}, &r); err != nil {
			return err
		}
		if r.Spec.Cluster != cluster || r.UID != rep.UID {
			return forbidden("restore %s is not a job of cluster %s", rep.Name, cluster)
		}
		if !OpenRestore(&r) {
			return statusError{http.StatusConflict, "restore " + rep.Name + " is no longer open (" + string(r.Status.Phase) + ")"}
		}
		p := rep.Progress
		if p.Phase == "" || p.Phase == fv1.PhaseNew {
			p.Phase = fv1.PhaseInProgress
		}
		take(&r.Status.JobProgress, p)
		cond := metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: fv1.ReasonInProgress,
			Message: "cluster " + cluster + "'s agent is restoring it", ObservedGeneration: r.Generation}
		switch p.Phase {
		case fv1.PhaseCompleted:
			cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, string(p.Phase), "restored"
		case fv1.PhasePartiallyFailed:
			cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, string(p.Phase), "restored with errors: see status.messages"
		case fv1.PhaseFailed:
			cond.Reason, cond.Message = string(p.Phase), failure(p)
		}
		meta.SetStatusCondition(&r.Status.Conditions, cond)
		return s.Client.Status().Update(ctx, &r)
	})
}

// take lays an agent's progress over the status: the start stays the
// first one reported, and messages are bounded.
func take(st *fv1.JobProgress, p fv1.JobProgress) {
	start := st.StartTimestamp
	*st = p
	if start != nil {
		st.StartTimestamp = start
	}
	if st.StartTimestamp == nil {
		now := metav1.Now()
		st.StartTimestamp = &now
	}
	if len(st.Messages) > fv1.MaxJobMessages {
		st.Messages = st.Messages[:fv1.MaxJobMessages]
	}
	if st.Phase.Done() && st.CompletionTimestamp == nil {
		now := metav1.Now()
		st.CompletionTimestamp = &now
	}
}

// failure is the first error a failed job reports.
func failure(p fv1.JobProgress) string {
	for _, m := range p.Messages {
		if m.Severity == "Error" {
			return m.Message
		}
	}
	return "the agent reported the job failed"
}
