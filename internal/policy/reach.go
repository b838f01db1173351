package policy

import (
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Reach is the clusters an access policy lets its subjects reach through the
// hub's access point. Reaching a cluster only lets a request in: the RBAC the
// policy sets in the cluster decides what it may do there.
type Reach struct {
	// All is every cluster, also those attached later.
	All bool
	// Clusters, sorted, when not All.
	Clusters []string
}

// None reports whether r reaches no cluster.
func (r Reach) None() bool { return !r.All && len(r.Clusters) == 0 }

// ReachOf computes which clusters p lets its subjects reach. A policy set on
// the organization, a group or a cluster reaches the clusters its scope
// names, namespaces or not: its selector narrows only the namespaces where it
// grants its role, which the cluster's RBAC enforces. A policy set on a
// workspace or a namespace reaches the clusters where it applies to at least
// one namespace. It is a pure function.
func ReachOf(p *fv1.Policy, clusters []ClusterView) Reach {
	if p.Spec.Type != fv1.PolicyAccess || p.Spec.Access == nil {
		return Reach{}
	}
	s := p.Spec.Scope
	if s.Organization {
		return Reach{All: true}
	}
	var r Reach
	for _, c := range clusters {
		var in bool
		switch {
		case s.ClusterGroup != "":
			in = c.Group == s.ClusterGroup
		case s.Cluster != "":
			in = c.Name == s.Cluster
		default:
			_, in = appliesToCluster(p, c.Namespaces)
		}
		if in {
			r.Clusters = append(r.Clusters, c.Name)
		}
	}
	sort.Strings(r.Clusters)
	return r
}

// ReachName is what the hub ClusterRole and ClusterRoleBinding granting a
// policy's reach are called.
func ReachName(policy string) string { return reachPrefix + policy }

const reachPrefix = "flotilla:reach:"

// ReachRBAC renders the hub RBAC that grants p's subjects reach r: a
// ClusterRole allowing fv1.ReachVerbs on clusters/proxy of the clusters
// reached, and a ClusterRoleBinding of p's users and groups to it. It is a
// pure function.
func ReachRBAC(p *fv1.Policy, r Reach) (*rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding) {
	om := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: ReachName(p.Name), Labels: map[string]string{fv1.LabelReachPolicy: p.Name}}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: om()}
	// An empty resourceNames means every name to RBAC: a policy that
	// reaches nothing gets no rule at all.
	if !r.None() {
		rule := rbacv1.PolicyRule{
			APIGroups: []string{fv1.ProxyGroup},
			Resources: []string{fv1.ProxyResource + "/" + fv1.ProxySubresource},
			Verbs:     append([]string(nil), fv1.ReachVerbs...),
		}
		if !r.All {
			rule.ResourceNames = append([]string(nil), r.Clusters...)
		}
		role.Rules = []rbacv1.PolicyRule{rule}
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: om(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
	}
	if p.Spec.Access == nil {
		return role, binding
	}
	seen := map[rbacv1.Subject]bool{}
	for _, s := range p.Spec.Access.Subjects {
		// A ServiceAccount subject names an account of the member
		// clusters, which has no counterpart on the hub: it is left out.
		if s.Kind != rbacv1.UserKind && s.Kind != rbacv1.GroupKind {
			continue
		}
		sub := rbacv1.Subject{Kind: s.Kind, APIGroup: rbacv1.GroupName, Name: s.Name}
		if !seen[sub] {
			seen[sub] = true
			binding.Subjects = append(binding.Subjects, sub)
		}
	}
	return role, binding
}
