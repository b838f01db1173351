package policy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// MatchKindsAnnotation on a rendered admission policy lists the kinds its
// rules match (Pod, apps/Deployment), one per rule, in order. The hub
// cannot know what a member cluster calls a kind's resource (a custom
// resource may have any plural), so it renders a guess and the agent
// rewrites each rule from the cluster's own discovery (ResolveKinds).
const MatchKindsAnnotation = "flotilla.dev/match-kinds"

// withKinds marks the admission policy among objs with the kinds its rules
// match.
func withKinds(objs []Object, kinds []string) []Object {
	for _, o := range objs {
		if strings.HasSuffix(fmt.Sprintf("%T", o), "AdmissionPolicy") {
			o.SetAnnotations(map[string]string{MatchKindsAnnotation: strings.Join(kinds, ",")})
		}
	}
	return objs
}

// resourcesOf is what a rule on resource of group matches: for pods, also
// the ephemeral containers subresource.
func resourcesOf(group, resource string) []string {
	if group == "" && resource == "pods" {
		return podResources
	}
	return []string{resource}
}

// KindResolver finds the resource a cluster serves a kind as.
type KindResolver func(schema.GroupKind) (schema.GroupVersionResource, error)

// Resolution is what ResolveKinds made of one admission policy.
type Resolution struct {
	// Governed are the resources whose objects the policy judges.
	Governed []schema.GroupVersionResource
	// NotServed are the kinds the cluster does not serve, each with why.
	NotServed map[string]error
	// Empty is true when no kind is served: the policy matches nothing and
	// must not be applied (a policy without rules is invalid).
	Empty bool
}

// ResolveKinds rewrites the rules of an admission policy u marked with
// MatchKindsAnnotation to the resources the cluster serves its kinds as,
// dropping the rules of kinds it does not serve. An object without the
// annotation is left alone.
func ResolveKinds(u *unstructured.Unstructured, resolve KindResolver) (Resolution, error) {
	var res Resolution
	list, ok := u.GetAnnotations()[MatchKindsAnnotation]
	if !ok {
		return res, nil
	}
	kinds := strings.Split(list, ",")
	rules, _, err := unstructured.NestedSlice(u.Object, "spec", "matchConstraints", "resourceRules")
	if err != nil {
		return res, err
	}
	if len(rules) != len(kinds) {
		return res, fmt.Errorf("%s %s: %d kinds for %d rules", u.GetKind(), u.GetName(), len(kinds), len(rules))
	}
	var kept []any
	for i, k := range kinds {
		group, kind := splitKind(k)
		gvr, err := resolve(schema.GroupKind{Group: group, Kind: kind})
		if err != nil {
			if res.NotServed == nil {
				res.NotServed = map[string]error{}
			}
			res.NotServed[k] = err
			continue
		}
		rule, ok := rules[i].(map[string]any)
		if !ok {
			return res, fmt.Errorf("%s %s: rule %d is not an object", u.GetKind(), u.GetName(), i)
		}
		resources := []any{}
		for _, r := range resourcesOf(gvr.Group, gvr.Resource) {
			resources = append(resources, r)
		}
		rule["resources"] = resources
		kept = append(kept, rule)
		res.Governed = append(res.Governed, gvr)
	}
	res.Empty = len(kept) == 0
	return res, unstructured.SetNestedSlice(u.Object, kept, "spec", "matchConstraints", "resourceRules")
}
