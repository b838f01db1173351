package heartbeat

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Observation is what the hub last heard from one agent.
type Observation struct {
	// Seen is when the last report arrived (or when the hub started
	// watching, for a cluster that has not reported since).
	Seen time.Time
	// Report is nil until the first report.
	Report *Report
}

// Interval is how often the observed agent reports, within what the hub accepts.
func (o Observation) Interval() time.Duration {
	if o.Report == nil {
		return DefaultInterval
	}
	return o.Report.Interval()
}

// Status computes the health-related part of a Cluster's status from an
// observation: a pure function of its inputs.
func Status(now time.Time, o Observation, current fv1.ClusterStatus) fv1.ClusterStatus {
	s := *current.DeepCopy()
	interval := o.Interval()
	set := func(t string, ok bool, reason, msg string) {
		st := metav1.ConditionFalse
		if ok {
			st = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg})
	}

	switch {
	case now.Sub(o.Seen) > MissedBeats*interval:
		s.Health = fv1.HealthDisconnected
		set(fv1.ClusterConditionAgentConnected, false, "HeartbeatMissed",
			"no heartbeat since "+o.Seen.UTC().Format(time.RFC3339)+" ("+MissedBeatsText(interval)+")")
		return s
	case o.Report == nil:
		return s // still waiting for a first report
	}

	r := o.Report
	set(fv1.ClusterConditionAgentConnected, true, "Heartbeating", "the agent reports every "+interval.String())
	s.KubernetesVersion, s.Platform, s.AgentVersion = r.KubernetesVersion, r.Platform, r.AgentVersion
	s.Nodes, s.Capacity, s.Allocatable = r.Nodes, r.Capacity, r.Allocatable
	s.Namespaces, s.Pods = r.Namespaces, r.Pods
	switch {
	case !r.Reachable:
		s.Health = fv1.HealthUnhealthy
		set(fv1.ClusterConditionHealthy, false, "APIServerUnreachable", "the agent cannot reach the cluster's apiserver: "+r.Error)
	case len(r.Failing) > 0:
		s.Health = fv1.HealthUnhealthy
		set(fv1.ClusterConditionHealthy, false, "ComponentFailing", strings.Join(r.Failing, "; "))
	default:
		s.Health = fv1.HealthHealthy
		set(fv1.ClusterConditionHealthy, true, "AllChecksPass", "every control-plane check passes")
	}
	return s
}

// MissedBeatsText explains the disconnect threshold.
func MissedBeatsText(interval time.Duration) string {
	return "agent missed 3 heartbeats of " + interval.String()
}
