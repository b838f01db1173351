package policy

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// MutationsName names the one MutatingAdmissionPolicy (and binding) that
// carries every mutation policy of a cluster, so their order is fixed.
const MutationsName = "flotilla-mutations"

// securityValidations are the CEL rules of a security policy beyond its
// Pod Security level; each message names the policy and its exemptions.
func securityValidations(p *fv1.Policy) []admissionregistrationv1.Validation {
	spec := p.Spec.Security
	ex := p.Spec.Exemptions
	var out []admissionregistrationv1.Validation
	add := func(expr, what string) {
		out = append(out, admissionregistrationv1.Validation{Expression: expr, Message: fmt.Sprintf("security policy %s: %s%s", p.Name, what, exemptionNote(p))})
	}
	if spec.DisallowPrivileged {
		add(podCheck{check: "!has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged"}.expression(ex),
			"containers must not be privileged")
	}
	if spec.DisallowHostNamespaces {
		add(podLevel("!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && !(has(object.spec.hostPID) && object.spec.hostPID) && !(has(object.spec.hostIPC) && object.spec.hostIPC)",
			[]string{"hostNetwork", "hostPID", "hostIPC"}),
			"pods must not share the node's network, PID or IPC namespace")
	}
	if spec.RequireRunAsNonRoot {
		add(podCheck{
			check:     "(has(c.securityContext) && has(c.securityContext.runAsNonRoot)) ? c.securityContext.runAsNonRoot : (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot)",
			podFields: []string{"securityContext"},
		}.expression(ex), "containers must set runAsNonRoot: true, on the pod or the container")
	}
	if spec.RequireReadOnlyRootFilesystem {
		add(podCheck{check: "has(c.securityContext) && has(c.securityContext.readOnlyRootFilesystem) && c.securityContext.readOnlyRootFilesystem"}.expression(ex),
			"containers must set readOnlyRootFilesystem: true")
	}
	if spec.Capabilities != nil {
		allowed := "none"
		if len(spec.Capabilities.Allowed) > 0 {
			allowed = strings.Join(spec.Capabilities.Allowed, ", ")
		}
		add(podCheck{check: fmt.Sprintf("!has(c.securityContext) || !has(c.securityContext.capabilities) || !has(c.securityContext.capabilities.add) || c.securityContext.capabilities.add.all(x, x in %s)", celStrings(spec.Capabilities.Allowed))}.expression(ex),
			"containers may add only these capabilities: "+allowed)
	}
	if rc := spec.RequireRuntimeClass; rc != "" {
		add(podLevel(fmt.Sprintf("has(object.spec.runtimeClassName) && object.spec.runtimeClassName == %q", rc), []string{"runtimeClassName"}),
			"pods must run in the RuntimeClass "+rc+" (set spec.runtimeClassName: "+rc+")")
	}
	return out
}

// mutating renders mutation policies, already in the order they run
// (cluster, then group, then organization), as one MutatingAdmissionPolicy
// whose mutations run in that order. Labels and annotations are set, so a
// later (higher) policy's value wins on conflict and a child cannot override
// its parent; pod security context fields are only filled in when unset, so
// the closest policy's default stands.
func mutating(eff []Effective) []Object {
	var mutations []admissionregistrationv1.Mutation
	kinds := map[string]bool{}
	for _, e := range eff {
		spec := e.Policy.Spec.Mutation
		mk := spec.MatchKinds
		if len(mk) == 0 {
			mk = []string{"Pod"}
		}
		var fields []string
		if md := metadataConfig(spec); md != "" {
			fields = append(fields, md)
		}
		if sc := securityContextConfig(spec.PodSecurityContext); sc != "" {
			fields = append(fields, sc)
		}
		cond := kindCondition(mk)
		for _, k := range mk {
			kinds[k] = true
		}
		if sel := selectorCondition(e.Policy.Spec.NamespaceSelector); sel != "" {
			cond += " && " + sel
		}
		mutations = append(mutations, admissionregistrationv1.Mutation{
			PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
			ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
				Expression: fmt.Sprintf("(%s) ? Object{%s} : Object{}", cond, strings.Join(fields, ", ")),
			},
		})
	}
	rules := kindRules(sortedKeys(kinds))
	for i := range rules {
		// Only on create: pod specs are immutable, and a default set on
		// update would make the update fail.
		rules[i].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	}
	fail := admissionregistrationv1.Fail
	return withKinds([]Object{
		&admissionregistrationv1.MutatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
			ObjectMeta: meta(MutationsName, "", nil),
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				FailurePolicy:      &fail,
				MatchConstraints:   &admissionregistrationv1.MatchResources{ResourceRules: rules},
				Mutations:          mutations,
				ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			},
		},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
			ObjectMeta: meta(MutationsName, "", nil),
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
				PolicyName:     MutationsName,
				MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: namespaceSelector(&fv1.Policy{})},
			},
		},
	}, sortedKeys(kinds))
}

func metadataConfig(spec *fv1.MutationSpec) string {
	var parts []string
	if len(spec.AddLabels) > 0 {
		parts = append(parts, "labels: "+celMap(spec.AddLabels))
	}
	if len(spec.AddAnnotations) > 0 {
		parts = append(parts, "annotations: "+celMap(spec.AddAnnotations))
	}
	if len(parts) == 0 {
		return ""
	}
	return "metadata: Object.metadata{" + strings.Join(parts, ", ") + "}"
}

// securityContextConfig fills in the pod security context fields d sets,
// keeping any value the pod already has.
func securityContextConfig(d *fv1.PodSecurityDefaults) string {
	if d == nil {
		return ""
	}
	keep := func(field, def string) string {
		return fmt.Sprintf("%[1]s: has(object.spec.securityContext) && has(object.spec.securityContext.%[1]s) ? object.spec.securityContext.%[1]s : %[2]s", field, def)
	}
	var fields []string
	if d.RunAsNonRoot != nil {
		fields = append(fields, keep("runAsNonRoot", strconv.FormatBool(*d.RunAsNonRoot)))
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"runAsUser", d.RunAsUser}, {"runAsGroup", d.RunAsGroup}, {"fsGroup", d.FSGroup}} {
		if f.v != nil {
			fields = append(fields, keep(f.name, strconv.FormatInt(*f.v, 10)))
		}
	}
	if d.SeccompProfile != "" {
		fields = append(fields, fmt.Sprintf("seccompProfile: has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) ? object.spec.securityContext.seccompProfile : Object.spec.securityContext.seccompProfile{type: %q}", d.SeccompProfile))
	}
	return "spec: Object.spec{securityContext: Object.spec.securityContext{" + strings.Join(fields, ", ") + "}}"
}

// kindCondition is true for a request about one of kinds (Pod, apps/Deployment).
func kindCondition(kinds []string) string {
	var any []string
	for _, k := range kinds {
		group, kind := splitKind(k)
		any = append(any, fmt.Sprintf("(request.kind.group == %q && request.kind.kind == %q)", group, kind))
	}
	return "(" + strings.Join(any, " || ") + ")"
}

// selectorCondition is a CEL expression true when the request's namespace
// matches sel; empty for no selector.
func selectorCondition(sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	const labels = "namespaceObject.metadata.labels"
	has := func(k string) string {
		return fmt.Sprintf("(has(%s) && %q in %s)", labels, k, labels)
	}
	conds := []string{"namespaceObject != null"}
	for _, k := range sortedKeys(sel.MatchLabels) {
		conds = append(conds, fmt.Sprintf("(%s && %s[%q] == %q)", has(k), labels, k, sel.MatchLabels[k]))
	}
	for _, r := range sel.MatchExpressions {
		in := fmt.Sprintf("(%s && %s[%q] in %s)", has(r.Key), labels, r.Key, celStrings(r.Values))
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			conds = append(conds, in)
		case metav1.LabelSelectorOpNotIn:
			conds = append(conds, "!"+in)
		case metav1.LabelSelectorOpExists:
			conds = append(conds, has(r.Key))
		case metav1.LabelSelectorOpDoesNotExist:
			conds = append(conds, "!"+has(r.Key))
		}
	}
	return "(" + strings.Join(conds, " && ") + ")"
}

func celStrings(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func celMap(m map[string]string) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%q: %q", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
