package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// KeyNotEnforced holds, in a read-only cluster's desired state, the
// policies that apply to it and are not enforced there, and why.
const KeyNotEnforced = "notEnforced.json"

// NotEnforced is what a cluster attached read-only is told instead of
// objects to apply: the policies that apply to it, none of which it
// enforces, and why, for its agent to report.
type NotEnforced struct {
	// Reason is fv1.ReasonReadOnlyAttach.
	Reason string `json:"reason"`
	// Message says why, for people.
	Message  string      `json:"message"`
	Policies []PolicyRef `json:"policies"`
}

// PolicyRef names a policy and its type.
type PolicyRef struct {
	Name string         `json:"name"`
	Type fv1.PolicyType `json:"type"`
}

// ReadOnlyMessage says why nothing of a policy is in cluster, attached
// read-only.
func ReadOnlyMessage(cluster string) string {
	return fmt.Sprintf("cluster %s is attached read-only: the agent may not create objects in it", cluster)
}

// RenderReadOnly is what a cluster attached read-only must hold: nothing.
// Its agent may not create objects there, so none are rendered; the
// policies that would apply are listed for it to report not enforced. It
// is a pure function.
func RenderReadOnly(policies []fv1.Policy, nss []Namespace, cluster string) Desired {
	ne := &NotEnforced{Reason: fv1.ReasonReadOnlyAttach, Message: ReadOnlyMessage(cluster), Policies: []PolicyRef{}}
	for i := range policies {
		p := &policies[i]
		if _, ok := appliesToCluster(p, nss); ok && p.DeletionTimestamp == nil {
			ne.Policies = append(ne.Policies, PolicyRef{Name: p.Name, Type: p.Spec.Type})
		}
	}
	sort.Slice(ne.Policies, func(i, j int) bool { return ne.Policies[i].Name < ne.Policies[j].Name })
	return Desired{PodSecurity: map[string]NamespaceSecurity{}, NotEnforced: ne}
}

// DecodeNotEnforced reads what Encode wrote of d.NotEnforced; nil when the
// cluster is not read-only.
func DecodeNotEnforced(data map[string]string) (*NotEnforced, error) {
	if data[KeyNotEnforced] == "" {
		return nil, nil
	}
	var ne NotEnforced
	if err := json.Unmarshal([]byte(data[KeyNotEnforced]), &ne); err != nil {
		return nil, err
	}
	return &ne, nil
}

// Insights are the findings an agent reports of ne: one per policy.
func (ne *NotEnforced) Insights() []fv1.Insight {
	out := make([]fv1.Insight, 0, len(ne.Policies))
	for _, p := range ne.Policies {
		out = append(out, fv1.Insight{Policy: p.Name, Type: p.Type, Kind: fv1.InsightNotEnforced, Reason: ne.Reason, Message: ne.Message})
	}
	return out
}

// PoliciesIn names the policies whose objects or Pod Security labels data
// (Encode's) holds, sorted: what an agent that may not apply them reports
// not enforced when the hub did not say so itself.
func PoliciesIn(data map[string]string) ([]PolicyRef, error) {
	objs, podSecurity, err := Decode(data)
	if err != nil {
		return nil, err
	}
	audits, err := DecodeAudits(data)
	if err != nil {
		return nil, err
	}
	types := map[string]fv1.PolicyType{}
	add := func(name string, t fv1.PolicyType) {
		if name != "" && (types[name] == "" || t != "") {
			types[name] = t
		}
	}
	for _, u := range objs {
		l := u.GetLabels()
		add(l[PolicyLabel], fv1.PolicyType(l[PolicyTypeLabel]))
		for _, src := range splitSources(u.GetAnnotations()[SourcesAnnotation]) {
			add(src, fv1.PolicyQuota)
		}
	}
	for _, s := range podSecurity {
		add(s.EnforcedBy, fv1.PolicySecurity)
		add(s.AuditedBy, fv1.PolicySecurity)
	}
	for name := range audits {
		add(name, "")
	}
	out := make([]PolicyRef, 0, len(types))
	for name, t := range types {
		out = append(out, PolicyRef{Name: name, Type: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// splitSources reads SourcesAnnotation (resource=policy, comma-separated)
// and returns the policies it names.
func splitSources(v string) []string {
	var out []string
	for _, kv := range strings.Split(v, ",") {
		if _, p, ok := strings.Cut(kv, "="); ok && p != "" {
			out = append(out, p)
		}
	}
	return out
}
