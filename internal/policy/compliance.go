package policy

import (
	"sort"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// ClusterView is what compliance, previews and reach need to know of one
// cluster: its group, its namespaces and what its agent last reported.
type ClusterView struct {
	Name string
	// Group is the cluster's group: a cluster with no namespaces yet is
	// still in it.
	Group      string
	Namespaces []Namespace
	// ReadOnly: the cluster is attached read-only and enforces no policy.
	ReadOnly bool
	// Report is nil before the agent's first report.
	Report *fv1.ClusterPolicyStatus
}

// Views are the clusters and their namespaces as resolution sees them,
// leaving out what is being deleted.
func Views(clusters []fv1.Cluster, nss []fv1.ClusterNamespace) []ClusterView {
	byHubNS := map[string][]*fv1.ClusterNamespace{}
	for i := range nss {
		if n := &nss[i]; n.DeletionTimestamp == nil {
			byHubNS[n.Namespace] = append(byHubNS[n.Namespace], n)
		}
	}
	views := make([]ClusterView, 0, len(clusters))
	for i := range clusters {
		c := &clusters[i]
		if c.DeletionTimestamp != nil {
			continue
		}
		v := ClusterView{Name: c.Name, Group: c.Spec.Group, ReadOnly: c.Spec.ReadOnly, Report: c.Status.Policies}
		for _, n := range byHubNS[fv1.HubNamespace(c.Name)] {
			v.Namespaces = append(v.Namespaces, Namespace{Cluster: c.Name, Group: c.Spec.Group, Name: n.Name, Workspace: n.Spec.Workspace, Labels: n.Status.Labels})
		}
		views = append(views, v)
	}
	return views
}

// Compliance is how the clusters a policy applies to comply with it.
type Compliance struct {
	// Clusters the policy applies to.
	Clusters int32
	// Noncompliant clusters report a violation, audit hit or sync error of it.
	Noncompliant int32
	// Violations and audit hits reported.
	Violations int32
	// NotEnforced names the clusters that report the policy not enforced
	// (sorted), and NotEnforcedReason the reason the first gives.
	NotEnforced       []string
	NotEnforcedReason string
}

// ComplianceOf sums up the clusters' reports about p. It is a pure function.
func ComplianceOf(p *fv1.Policy, clusters []ClusterView) Compliance {
	var c Compliance
	for _, cl := range clusters {
		if _, ok := appliesToCluster(p, cl.Namespaces); !ok {
			continue
		}
		c.Clusters++
		if cl.Report == nil {
			continue
		}
		bad, notEnforced := false, false
		for _, in := range cl.Report.Insights {
			if in.Policy != p.Name {
				continue
			}
			switch in.Kind {
			case fv1.InsightViolation, fv1.InsightAuditHit:
				c.Violations++
				bad = true
			case fv1.InsightSyncError:
				bad = true
			case fv1.InsightNotEnforced:
				if !notEnforced && c.NotEnforcedReason == "" {
					c.NotEnforcedReason = in.Reason
				}
				notEnforced = true
			}
		}
		if notEnforced {
			c.NotEnforced = append(c.NotEnforced, cl.Name)
		}
		if bad {
			c.Noncompliant++
		}
	}
	sort.Strings(c.NotEnforced)
	return c
}
