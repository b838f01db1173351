// Package policy resolves which guardrails apply where: a namespace's
// effective policies are those set on its ancestors in both trees
// (organization → cluster group → cluster → namespace, and organization →
// workspace → namespace), combined per type. Everything here is a pure
// function of its inputs.
package policy

import (
	"sort"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Namespace is what resolution needs to know of one namespace.
type Namespace struct {
	Cluster   string
	Group     string
	Name      string
	Workspace string
	Labels    map[string]string
}

// Level orders where a policy is set, from the top of the trees down.
type Level int

// Levels.
const (
	LevelOrganization Level = iota
	LevelClusterGroup
	LevelCluster
	LevelWorkspace
	LevelNamespace
)

// Source says where an effective policy comes from.
type Source struct {
	Level Level
	// Name of the group, cluster, workspace or cluster/namespace.
	Name string
}

func (s Source) String() string {
	switch s.Level {
	case LevelOrganization:
		return "organization"
	case LevelClusterGroup:
		return "cluster group " + s.Name
	case LevelCluster:
		return "cluster " + s.Name
	case LevelWorkspace:
		return "workspace " + s.Name
	}
	return "namespace " + s.Name
}

// Effective is one policy that applies, and where it is set.
type Effective struct {
	Policy *fv1.Policy
	From   Source
}

// sourceFor reports whether p applies to ns and where it is set.
func sourceFor(p *fv1.Policy, ns Namespace) (Source, bool) {
	s := p.Spec.Scope
	var src Source
	switch {
	case s.Organization:
		src = Source{Level: LevelOrganization}
	case s.ClusterGroup != "" && s.ClusterGroup == ns.Group:
		src = Source{Level: LevelClusterGroup, Name: s.ClusterGroup}
	case s.Cluster != "" && s.Cluster == ns.Cluster:
		src = Source{Level: LevelCluster, Name: s.Cluster}
	case s.Workspace != "" && s.Workspace == ns.Workspace:
		src = Source{Level: LevelWorkspace, Name: s.Workspace}
	case s.Namespace != nil && s.Namespace.Cluster == ns.Cluster && s.Namespace.Name == ns.Name:
		src = Source{Level: LevelNamespace, Name: ns.Cluster + "/" + ns.Name}
	default:
		return Source{}, false
	}
	if p.Spec.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.NamespaceSelector)
		if err != nil || !sel.Matches(labels.Set(ns.Labels)) {
			return Source{}, false
		}
	}
	if ExemptsNamespace(p, ns.Name) {
		return Source{}, false
	}
	return src, true
}

// ExemptFor returns the policies that would apply to ns but exempt it.
func ExemptFor(policies []fv1.Policy, ns Namespace) []Effective {
	var out []Effective
	for i := range policies {
		p := &policies[i]
		if p.DeletionTimestamp != nil || !ExemptsNamespace(p, ns.Name) {
			continue
		}
		q := p.DeepCopy()
		q.Spec.Exemptions = nil
		if src, ok := sourceFor(q, ns); ok {
			out = append(out, Effective{Policy: p, From: src})
		}
	}
	return out
}

// ExemptsNamespace reports whether p names namespace among its exemptions.
func ExemptsNamespace(p *fv1.Policy, namespace string) bool {
	if p.Spec.Exemptions == nil {
		return false
	}
	for _, n := range p.Spec.Exemptions.Namespaces {
		if n == namespace {
			return true
		}
	}
	return false
}

// ForNamespace returns the policies that apply to ns, from the top of the
// trees down (and by name within a level), so results are stable.
func ForNamespace(policies []fv1.Policy, ns Namespace) []Effective {
	var out []Effective
	for i := range policies {
		p := &policies[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if src, ok := sourceFor(p, ns); ok {
			out = append(out, Effective{Policy: p, From: src})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].From.Level != out[j].From.Level {
			return out[i].From.Level < out[j].From.Level
		}
		return out[i].Policy.Name < out[j].Policy.Name
	})
	return out
}

// OfType keeps the effective policies of one type.
func OfType(eff []Effective, t fv1.PolicyType) []Effective {
	var out []Effective
	for _, e := range eff {
		if e.Policy.Spec.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// Levels are the Pod Security levels of a namespace, and the policies that
// set them. Empty means none.
type Levels struct {
	// Enforce is the level rejected on (from enforce-mode policies).
	Enforce, EnforcedBy string
	// Audit is the level warned and reported on (from all of them).
	Audit, AuditedBy string
}

// SecurityLevels combines security policies: all apply and the most
// restrictive wins, so a child cannot relax a parent. On a tie the policy set
// highest in the trees is named.
func SecurityLevels(eff []Effective) Levels {
	rank := map[string]int{"": 0, "baseline": 1, "restricted": 2}
	var l Levels
	for _, e := range OfType(eff, fv1.PolicySecurity) {
		lv := e.Policy.Spec.Security.Level
		if rank[lv] > rank[l.Audit] {
			l.Audit, l.AuditedBy = lv, e.Policy.Name
		}
		if e.Policy.Spec.Mode != fv1.ModeAudit && rank[lv] > rank[l.Enforce] {
			l.Enforce, l.EnforcedBy = lv, e.Policy.Name
		}
	}
	return l
}

// Quota is the combined limit of a namespace; nil fields are unlimited.
type Quota struct {
	CPU, Memory *resource.Quantity
	Pods        *int64
	// Sources name the policy that set each limit, by resource name
	// (requests.cpu, requests.memory, pods).
	Sources map[string]string
}

// Presets of quota policies.
var Presets = map[string]Quota{
	"small":  {CPU: q("2"), Memory: q("4Gi"), Pods: i64(20)},
	"medium": {CPU: q("8"), Memory: q("16Gi"), Pods: i64(50)},
	"large":  {CPU: q("32"), Memory: q("64Gi"), Pods: i64(200)},
}

// QuotaFor combines quota policies: the most restrictive per resource.
func QuotaFor(eff []Effective) (Quota, bool) {
	out := Quota{Sources: map[string]string{}}
	found := false
	for _, e := range OfType(eff, fv1.PolicyQuota) {
		found = true
		spec := e.Policy.Spec.Quota
		limit := Quota{CPU: spec.CPU, Memory: spec.Memory, Pods: spec.Pods}
		if spec.Preset != "" {
			limit = Presets[spec.Preset]
		}
		if m := minQ(out.CPU, limit.CPU); m != out.CPU {
			out.CPU, out.Sources["requests.cpu"] = m, e.Policy.Name
		}
		if m := minQ(out.Memory, limit.Memory); m != out.Memory {
			out.Memory, out.Sources["requests.memory"] = m, e.Policy.Name
		}
		if limit.Pods != nil && (out.Pods == nil || *limit.Pods < *out.Pods) {
			out.Pods, out.Sources["pods"] = limit.Pods, e.Policy.Name
		}
	}
	return out, found
}

// MutationOrder orders mutation policies cluster first, then group, then
// organization: the closer a policy is set, the earlier it runs.
func MutationOrder(eff []Effective) []Effective {
	out := OfType(eff, fv1.PolicyMutation)
	sort.SliceStable(out, func(i, j int) bool { return out[i].From.Level > out[j].From.Level })
	return out
}

func minQ(a, b *resource.Quantity) *resource.Quantity {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.Cmp(*a) < 0:
		return b
	}
	return a
}

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func i64(v int64) *int64 { return &v }
