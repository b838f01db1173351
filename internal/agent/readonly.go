package agent

import (
	"fmt"

	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/policy"
)

// A cluster attached read-only grants its agent get, list and watch, and
// in the agent's own namespace its identity Secret (the manifest's
// ClusterRole fv1.ReadOnlyAgentRole). Its agent then reports what it sees,
// as any agent does, and writes nothing in the cluster but that Secret:
// the policies the hub says apply are reported not enforced, one insight
// each, and what would write is refused with the reason.

// notEnforced is what the agent reports instead of applying data, the
// desired policies the hub pushed: nil when it may apply them. The hub
// says a cluster is attached read-only by sending no objects and the
// policies that apply; an agent told --read-only whose hub renders objects
// all the same (the Cluster is not read-only) reports those objects'
// policies.
func (a *agent) notEnforced(data map[string]string) (*policy.NotEnforced, error) {
	ne, err := policy.DecodeNotEnforced(data)
	if err != nil {
		return nil, fmt.Errorf("desired policies from the hub are unreadable: %w", err)
	}
	if ne != nil {
		if !a.readOnly.Swap(true) {
			klog.InfoS("the hub says the cluster is attached read-only: the agent applies no policy and writes nothing in it", "cluster", a.current().Cluster)
		}
		return ne, nil
	}
	if !a.c.ReadOnly {
		return nil, nil
	}
	refs, err := policy.PoliciesIn(data)
	if err != nil {
		return nil, fmt.Errorf("desired policies from the hub are unreadable: %w", err)
	}
	return &policy.NotEnforced{
		Reason:   fv1.ReasonReadOnlyAttach,
		Message:  fmt.Sprintf("the agent of cluster %s runs read-only (--read-only): it may not create objects in it", a.current().Cluster),
		Policies: refs,
	}, nil
}

// refuseUsers says why the agent does not act for the hub's users in its
// cluster (its tunnel), or "" when it does: that takes impersonation,
// which a read-only grant does not hold.
func (a *agent) refuseUsers() string {
	if !a.readOnly.Load() {
		return ""
	}
	return fmt.Sprintf("cluster %s is attached read-only: its agent may not act for users in it (that needs impersonation, which a read-only grant does not hold)", a.current().Cluster)
}

// refuseJob says why the agent does not run a backup or restore of kind,
// or "" when it does.
func (a *agent) refuseJob(kind string) string {
	if !a.readOnly.Load() {
		return ""
	}
	if kind == jobs.KindRestore {
		return policy.ReadOnlyMessage(a.current().Cluster)
	}
	return fmt.Sprintf("cluster %s is attached read-only: its agent may read only what the fleet view needs, not every object a backup holds", a.current().Cluster)
}
