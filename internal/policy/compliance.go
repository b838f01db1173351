package policy

import fv1 "flotilla.dev/flotilla/api/v1alpha1"

// ClusterView is what compliance needs to know of one cluster: its
// namespaces and what its agent reports.
type ClusterView struct {
	Namespaces []Namespace
	Insights   []fv1.Insight
}

// Compliance is how the clusters a policy applies to comply with it.
type Compliance struct {
	// Clusters the policy applies to.
	Clusters int32
	// Noncompliant clusters report a violation, audit hit or sync error of it.
	Noncompliant int32
	// Violations and audit hits reported.
	Violations int32
}

// ComplianceOf sums up the clusters' reports about p. It is a pure function.
func ComplianceOf(p *fv1.Policy, clusters []ClusterView) Compliance {
	var c Compliance
	for _, cl := range clusters {
		if _, ok := appliesToCluster(p, cl.Namespaces); !ok {
			continue
		}
		c.Clusters++
		bad := false
		for _, in := range cl.Insights {
			if in.Policy != p.Name {
				continue
			}
			switch in.Kind {
			case fv1.InsightViolation, fv1.InsightAuditHit:
				c.Violations++
				bad = true
			case fv1.InsightSyncError:
				bad = true
			}
		}
		if bad {
			c.Noncompliant++
		}
	}
	return c
}
