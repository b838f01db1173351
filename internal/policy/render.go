package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// OwnedLabel marks every object Flotilla renders into a member cluster; the
// agent deletes labelled objects that are no longer desired.
const OwnedLabel = "flotilla.dev/policy-owned"

// PolicyLabel names the policy an object comes from, PolicyTypeLabel its type.
const (
	PolicyLabel     = "flotilla.dev/policy"
	PolicyTypeLabel = "flotilla.dev/policy-type"
)

// exempt namespaces hold the cluster's own machinery; namespace-level
// guardrails leave them alone.
var exempt = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true, "flotilla-system": true}

// SourcesAnnotation on a rendered ResourceQuota names the policy behind each
// limit (resource=policy, comma-separated), so findings name their policy.
const SourcesAnnotation = "flotilla.dev/policy-sources"

// Exempt reports whether namespace holds the cluster's own machinery, which
// namespace-level guardrails leave alone.
func Exempt(namespace string) bool { return exempt[namespace] }

// Object is a rendered Kubernetes object. It is declared here, not taken
// from controller-runtime, so that the agent, which decodes what is
// rendered, links no controller-runtime.
type Object interface {
	metav1.Object
	runtime.Object
}

// Desired is what one cluster must hold: objects to apply, and the Pod
// Security labels each namespace must carry.
type Desired struct {
	Objects []Object
	// PodSecurity maps namespace → its Pod Security labels and their policies.
	PodSecurity map[string]NamespaceSecurity
	// Audits maps each audit-mode policy that can reject objects to its
	// generation, so the agent can say which generation its findings cover.
	Audits map[string]int64
	// NotEnforced, for a cluster attached read-only, lists the policies
	// that apply to it and are not enforced there; it then holds nothing
	// else.
	NotEnforced *NotEnforced
}

// NamespaceSecurity is the Pod Security a namespace must carry.
type NamespaceSecurity struct {
	Labels map[string]string `json:"labels"`
	// EnforcedBy and AuditedBy name the policies that set the levels.
	EnforcedBy string `json:"enforcedBy,omitempty"`
	AuditedBy  string `json:"auditedBy,omitempty"`
}

// Render computes what one cluster must hold for policies, given its
// namespaces (all of one cluster). It is a pure function.
func Render(policies []fv1.Policy, nss []Namespace) Desired {
	d := Desired{PodSecurity: map[string]NamespaceSecurity{}}
	bindings := map[string]bool{}
	for _, ns := range nss {
		eff := ForNamespace(policies, ns)
		if exempt[ns.Name] {
			continue
		}
		if l := SecurityLevels(eff); l.Audit != "" {
			labels := map[string]string{"pod-security.kubernetes.io/audit": l.Audit, "pod-security.kubernetes.io/warn": l.Audit}
			if l.Enforce != "" {
				labels["pod-security.kubernetes.io/enforce"] = l.Enforce
			}
			d.PodSecurity[ns.Name] = NamespaceSecurity{Labels: labels, EnforcedBy: l.EnforcedBy, AuditedBy: l.AuditedBy}
		}
		if q, ok := QuotaFor(eff); ok {
			d.Objects = append(d.Objects, resourceQuota(ns.Name, q), limitRange(ns.Name))
		}
		for _, e := range OfType(eff, fv1.PolicyNetwork) {
			d.Objects = append(d.Objects, networkPolicy(ns.Name, e.Policy))
		}
		for _, e := range OfType(eff, fv1.PolicyAccess) {
			// Set for the whole cluster without a selector: one cluster-wide binding.
			if e.From.Level <= LevelCluster && e.Policy.Spec.NamespaceSelector == nil {
				if !bindings[e.Policy.Name] {
					bindings[e.Policy.Name] = true
					d.Objects = append(d.Objects, clusterRoleBinding(e.Policy))
				}
				continue
			}
			d.Objects = append(d.Objects, roleBinding(ns.Name, e.Policy))
		}
	}
	// Admission policies are cluster-wide objects matching namespaces by label.
	var mutations []Effective
	for i := range policies {
		p := &policies[i]
		src, ok := appliesToCluster(p, nss)
		if p.DeletionTimestamp != nil || !ok {
			continue
		}
		if p.Spec.Mode == fv1.ModeAudit && Rejects(p.Spec.Type) {
			if d.Audits == nil {
				d.Audits = map[string]int64{}
			}
			d.Audits[p.Name] = p.Generation
		}
		switch p.Spec.Type {
		case fv1.PolicySecurity:
			if v := securityValidations(p); len(v) > 0 {
				d.Objects = append(d.Objects, validating(p, podRule(), v)...)
			}
		case fv1.PolicyMutation:
			mutations = append(mutations, Effective{Policy: p, From: src})
		case fv1.PolicyImageRegistry:
			d.Objects = append(d.Objects, validating(p, podRule(), []admissionregistrationv1.Validation{imageValidation(p)})...)
		case fv1.PolicyCustom:
			d.Objects = append(d.Objects, withKinds(validating(p, kindRules(p.Spec.Custom.MatchKinds), []admissionregistrationv1.Validation{customValidation(p)}), p.Spec.Custom.MatchKinds)...)
		}
	}
	if len(mutations) > 0 {
		d.Objects = append(d.Objects, mutating(MutationOrder(mutations))...)
	}
	sort.SliceStable(d.Objects, func(i, j int) bool { return key(d.Objects[i]) < key(d.Objects[j]) })
	return d
}

// Rejects reports whether policies of type t can reject objects, so that
// in audit mode they report what they would reject.
func Rejects(t fv1.PolicyType) bool {
	return t == fv1.PolicySecurity || t == fv1.PolicyImageRegistry || t == fv1.PolicyCustom
}

// RenderOne is what p alone becomes in one namespace ("check") of a
// cluster, whatever its scope and selector: the hub validates it as a member
// cluster would before accepting p.
func RenderOne(p *fv1.Policy) []Object {
	const ns = "check"
	switch p.Spec.Type {
	case fv1.PolicyAccess:
		return []Object{roleBinding(ns, p), clusterRoleBinding(p)}
	case fv1.PolicyNetwork:
		return []Object{networkPolicy(ns, p)}
	case fv1.PolicyImageRegistry:
		return validating(p, podRule(), []admissionregistrationv1.Validation{imageValidation(p)})
	case fv1.PolicyCustom:
		return withKinds(validating(p, kindRules(p.Spec.Custom.MatchKinds), []admissionregistrationv1.Validation{customValidation(p)}), p.Spec.Custom.MatchKinds)
	case fv1.PolicySecurity:
		if v := securityValidations(p); len(v) > 0 {
			return validating(p, podRule(), v)
		}
	case fv1.PolicyMutation:
		return mutating([]Effective{{Policy: p}})
	}
	return nil
}

// appliesToCluster reports whether p applies to any namespace of the
// cluster, and where it is set.
func appliesToCluster(p *fv1.Policy, nss []Namespace) (Source, bool) {
	for _, ns := range nss {
		if !exempt[ns.Name] {
			if src, ok := sourceFor(p, ns); ok {
				return src, true
			}
		}
	}
	return Source{}, false
}

// ObjectName is what the objects a policy renders to are called.
func ObjectName(policy string) string { return objectPrefix + policy }

// PolicyOf names the policy behind an object ObjectName named.
func PolicyOf(object string) string { return strings.TrimPrefix(object, objectPrefix) }

const objectPrefix = "flotilla-"

func meta(name, namespace string, p *fv1.Policy) metav1.ObjectMeta {
	labels := map[string]string{OwnedLabel: "true"}
	if p != nil {
		labels[PolicyLabel] = p.Name
		labels[PolicyTypeLabel] = string(p.Spec.Type)
	}
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}

func resourceQuota(ns string, q Quota) Object {
	hard := corev1.ResourceList{}
	if q.CPU != nil {
		hard[corev1.ResourceRequestsCPU] = *q.CPU
	}
	if q.Memory != nil {
		hard[corev1.ResourceRequestsMemory] = *q.Memory
	}
	if q.Pods != nil {
		hard[corev1.ResourcePods] = *resource.NewQuantity(*q.Pods, resource.DecimalSI)
	}
	rq := &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: meta("flotilla-quota", ns, nil),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}
	var sources []string
	for _, r := range sortedKeys(q.Sources) {
		sources = append(sources, r+"="+q.Sources[r])
	}
	rq.Annotations = map[string]string{SourcesAnnotation: strings.Join(sources, ",")}
	return rq
}

// limitRange gives containers default requests, so pods that set none are
// still admitted under a quota on requests.
func limitRange(ns string) Object {
	return &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: meta("flotilla-defaults", ns, nil),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			DefaultRequest: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		}}},
	}
}

func networkPolicy(ns string, p *fv1.Policy) Object {
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(ObjectName(p.Name), ns, p),
	}
	var all []networkingv1.NetworkPolicyPeer // no peers listed: everything
	switch p.Spec.Network.Recipe {
	case "allow-all":
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: all}}
	case "allow-all-egress":
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: all}}
	case "deny-all":
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case "deny-all-egress":
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	case "allow-same-namespace":
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}
	case "custom":
		np.Spec = *p.Spec.Network.Custom.DeepCopy()
	}
	return np
}

func subjects(p *fv1.Policy) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, s := range p.Spec.Access.Subjects {
		sub := rbacv1.Subject{Kind: s.Kind, Name: s.Name}
		if s.Kind == rbacv1.ServiceAccountKind {
			sub.Namespace = s.Namespace
		} else {
			sub.APIGroup = rbacv1.GroupName
		}
		out = append(out, sub)
	}
	return out
}

func clusterRoleBinding(p *fv1.Policy) Object {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: meta(ObjectName(p.Name), "", p),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: p.Spec.Access.Role},
		Subjects:   subjects(p),
	}
}

func roleBinding(ns string, p *fv1.Policy) Object {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(ObjectName(p.Name), ns, p),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: p.Spec.Access.Role},
		Subjects:   subjects(p),
	}
}

// namespaceSelector matches the namespaces a policy applies to by the labels
// the agent keeps on them.
func namespaceSelector(p *fv1.Policy) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: sortedKeys(exempt),
	}}}
	s := p.Spec.Scope
	switch {
	case s.Workspace != "":
		sel.MatchLabels = map[string]string{fv1.LabelWorkspace: s.Workspace}
	case s.Namespace != nil:
		sel.MatchLabels = map[string]string{corev1.LabelMetadataName: s.Namespace.Name}
	}
	if ex := p.Spec.Exemptions; ex != nil && len(ex.Namespaces) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: ex.Namespaces,
		})
	}
	if p.Spec.NamespaceSelector != nil {
		for k, v := range p.Spec.NamespaceSelector.MatchLabels {
			if sel.MatchLabels == nil {
				sel.MatchLabels = map[string]string{}
			}
			sel.MatchLabels[k] = v
		}
		sel.MatchExpressions = append(sel.MatchExpressions, p.Spec.NamespaceSelector.MatchExpressions...)
	}
	return sel
}

func validating(p *fv1.Policy, rules []admissionregistrationv1.NamedRuleWithOperations, validations []admissionregistrationv1.Validation) []Object {
	fail := admissionregistrationv1.Fail
	actions := []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	if p.Spec.Mode == fv1.ModeAudit {
		actions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit, admissionregistrationv1.Warn}
	}
	name := ObjectName(p.Name)
	return []Object{
		&admissionregistrationv1.ValidatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
			ObjectMeta: meta(name, "", p),
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy:    &fail,
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: rules},
				Validations:      validations,
			},
		},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: meta(name, "", p),
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        name,
				ValidationActions: actions,
				MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: namespaceSelector(p)},
			},
		},
	}
}

func customValidation(p *fv1.Policy) admissionregistrationv1.Validation {
	return admissionregistrationv1.Validation{
		Expression: judgeChanges(p.Spec.Custom.Expression),
		Message:    orDefault(p.Spec.Custom.Message, "denied by policy "+p.Name),
	}
}

// podResources are what a rule on pods matches: the pod, and the
// subresource through which ephemeral containers (kubectl debug) are added,
// which would otherwise bypass it.
var podResources = []string{"pods", "pods/ephemeralcontainers"}

func podRule() []admissionregistrationv1.NamedRuleWithOperations {
	return []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: podResources},
	}}}
}

// kindRules maps kinds such as Pod or apps/Deployment to admission rules.
func kindRules(kinds []string) []admissionregistrationv1.NamedRuleWithOperations {
	var out []admissionregistrationv1.NamedRuleWithOperations
	for _, k := range kinds {
		group, kind := splitKind(k)
		out = append(out, admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resourcesOf(group, plural(kind))},
		}})
	}
	return out
}

// splitKind splits Pod or apps/Deployment into API group and kind.
func splitKind(k string) (group, kind string) {
	if g, kk, ok := strings.Cut(k, "/"); ok {
		return g, kk
	}
	return "", k
}

func plural(kind string) string {
	k := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(k, "s"):
		return k + "es"
	case strings.HasSuffix(k, "y"):
		return strings.TrimSuffix(k, "y") + "ies"
	}
	return k + "s"
}

// imageValidation checks every container image of a pod against the policy.
func imageValidation(p *fv1.Policy) admissionregistrationv1.Validation {
	spec := p.Spec.ImageRegistry
	var checks, wants []string
	if len(spec.AllowedRegistries) > 0 {
		var any []string
		for _, r := range spec.AllowedRegistries {
			if strings.Contains(r, "*") {
				// A pattern over the whole image reference; * matches anything.
				re := "^" + strings.ReplaceAll(regexp.QuoteMeta(r), `\*`, ".*") + "$"
				any = append(any, fmt.Sprintf("c.image.matches(%q)", re))
				continue
			}
			any = append(any, fmt.Sprintf("c.image.startsWith(%q)", strings.TrimSuffix(r, "/")+"/"))
		}
		checks = append(checks, "("+strings.Join(any, " || ")+")")
		wants = append(wants, "come from "+strings.Join(spec.AllowedRegistries, ", "))
	}
	if spec.BlockLatest {
		checks = append(checks, "(c.image.contains('@') || (c.image.split('/')[size(c.image.split('/')) - 1].contains(':') && !c.image.endsWith(':latest')))")
		wants = append(wants, "have a tag other than latest")
	}
	if spec.RequireDigest {
		checks = append(checks, "c.image.contains('@sha256:')")
		wants = append(wants, "be pinned by digest")
	}
	check := "true"
	if len(checks) > 0 {
		check = strings.Join(checks, " && ")
	}
	return admissionregistrationv1.Validation{
		Expression: podCheck{check: check}.expression(p.Spec.Exemptions),
		Message:    fmt.Sprintf("image-registry policy %s: every image must %s%s", p.Name, strings.Join(wants, " and "), exemptionNote(p)),
	}
}

func key(o Object) string {
	return fmt.Sprintf("%T/%s/%s", o, o.GetNamespace(), o.GetName())
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
