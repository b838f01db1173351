package tracker

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/metrics"
)

// What the tracker tells in Events and metrics is decided where it writes:
// only a write that changes a cluster's health or policy sync says so, never
// a report that changes nothing, which is almost every one of a fleet's.

// maxNote keeps an Event's note under the API's 1 KB.
const maxNote = 1000

func note(s string) string {
	if len(s) > maxNote {
		return s[:maxNote] + "…"
	}
	return s
}

// Queued is how many clusters' status writes wait in the tracker's queue.
func (t *Tracker) Queued() int { return t.queue.Len() }

// Leading says whether the tracker serves agents: Start has taken the
// fleet over and not returned.
func (t *Tracker) Leading() bool { return t.leading.Load() }

// heartbeatAge records, as a report arrives, how old the cluster's previous
// one was; called with the observation the report replaces.
func heartbeatAge(prev heartbeat.Observation) {
	if prev.Report != nil {
		metrics.HeartbeatArrived(prev.Seen, time.Now())
	}
}

// healthWritten tells of a health change the tracker has just written:
// before is the Cluster as it was, next its status now.
func (t *Tracker) healthWritten(before *fv1.Cluster, next fv1.ClusterStatus) {
	was, is := before.Status.Health, next.Health
	if was == is {
		return
	}
	first := was == "" || was == fv1.HealthUnknown
	if first && is == fv1.HealthHealthy {
		metrics.FirstHealthy(before.CreationTimestamp.Time)
	}
	if t.Events == nil {
		return
	}
	why := func(condition string) string {
		if c := meta.FindStatusCondition(next.Conditions, condition); c != nil {
			return c.Reason + ": " + c.Message
		}
		return ""
	}
	switch is {
	case fv1.HealthDisconnected:
		t.Events.Eventf(before, corev1.EventTypeWarning, "Disconnected", "%s", note("was "+string(was)+"; "+why(fv1.ClusterConditionAgentConnected)))
	case fv1.HealthUnhealthy:
		t.Events.Eventf(before, corev1.EventTypeWarning, "Unhealthy", "%s", note("was "+string(was)+"; "+why(fv1.ClusterConditionHealthy)))
	case fv1.HealthHealthy:
		if first {
			t.Events.Eventf(before, corev1.EventTypeNormal, "Connected", "the agent's first report: healthy")
			return
		}
		t.Events.Eventf(before, corev1.EventTypeNormal, "Healthy", "healthy again (was %s)", was)
	}
}

// policiesStored tells of the policy report p of cluster c (as it was
// before) that the hub has just stored, unless refused: the fan-out it
// ends, and, as Events, what it changes: the cluster's sync on the Cluster,
// and each policy that starts or stops failing there on the Policy.
func (t *Tracker) policiesStored(ctx context.Context, c *fv1.Cluster, p *fv1.ClusterPolicyStatus, refused string) {
	if refused != "" {
		return
	}
	metrics.PoliciesReported(c.Name, p.Synced == "True")
	if t.Events == nil {
		return
	}
	old := c.Status.Policies
	if old == nil {
		old = &fv1.ClusterPolicyStatus{}
	}
	failing, wasFailing := syncErrors(p), syncErrors(old)
	if p.Synced != old.Synced {
		switch p.Synced {
		case "True":
			t.Events.Eventf(c, corev1.EventTypeNormal, "PoliciesApplied", "the agent applied every policy object (%d)", p.Objects)
		case "False":
			if why := notEnforced(p); why != "" && len(failing) == 0 {
				// Nothing failed: the agent applies nothing there, by design.
				t.Events.Eventf(c, corev1.EventTypeNormal, "PoliciesNotEnforced", "%s", note(why))
				break
			}
			t.Events.Eventf(c, corev1.EventTypeWarning, "PolicySyncFailed", "%s", note(syncSummary(failing)))
		}
	}
	for name, msg := range failing {
		if _, ok := wasFailing[name]; !ok {
			t.policyEvent(ctx, name, corev1.EventTypeWarning, "SyncFailed", "cluster "+c.Name+" cannot apply it: "+msg)
		}
	}
	for name := range wasFailing {
		if _, ok := failing[name]; !ok {
			t.policyEvent(ctx, name, corev1.EventTypeNormal, "Applied", "cluster "+c.Name+" applies it again")
		}
	}
}

// syncErrors maps each policy named by a sync error in p to its first one.
func syncErrors(p *fv1.ClusterPolicyStatus) map[string]string {
	out := map[string]string{}
	for _, in := range p.Insights {
		if in.Kind != fv1.InsightSyncError || in.Policy == "" {
			continue
		}
		if _, ok := out[in.Policy]; !ok {
			out[in.Policy] = in.Object + ": " + in.Message
		}
	}
	return out
}

// notEnforced says why p's policies are not enforced in its cluster (as
// one attached read-only reports), or "" if p says no such thing.
func notEnforced(p *fv1.ClusterPolicyStatus) string {
	for _, in := range p.Insights {
		if in.Kind == fv1.InsightNotEnforced {
			return in.Message + "; its policies are reported not enforced"
		}
	}
	return ""
}

func syncSummary(failing map[string]string) string {
	for name, msg := range failing {
		return "policy " + name + " and perhaps others not applied: " + msg
	}
	return "the agent could not apply every policy object; see flotilla policy insights"
}

// policyEventLimits holds, per policy, how fast clusters' transitions of it
// are told on it. A policy that breaks in every cluster at once would
// otherwise get one Event per cluster, 10,000 on one object; past the first
// few, the Policy's status (Compliant) sums them up.
var policyEventLimits sync.Map // policy name → *rate.Limiter

const (
	policyEventsBurst = 10
	policyEventsEvery = 6 * time.Second
)

// policyEvent records an Event on the Policy name, as cached: a policy
// deleted meanwhile gets none.
func (t *Tracker) policyEvent(ctx context.Context, name, typ, reason, msg string) {
	l, _ := policyEventLimits.LoadOrStore(name, rate.NewLimiter(rate.Every(policyEventsEvery), policyEventsBurst))
	if !l.(*rate.Limiter).Allow() {
		return
	}
	var pol fv1.Policy
	if err := t.Client.Get(ctx, client.ObjectKey{Name: name}, &pol, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	t.Events.Eventf(&pol, typ, reason, "%s", note(msg))
}
