package policy

import (
	"reflect"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func find[T Object](objs []Object, name, ns string) (T, bool) {
	for _, o := range objs {
		if t, ok := o.(T); ok && o.GetName() == name && o.GetNamespace() == ns {
			return t, true
		}
	}
	var zero T
	return zero, false
}

var api = Namespace{Cluster: "a", Group: "prod", Name: "api", Workspace: "shop", Labels: map[string]string{"tier": "back"}}

func TestRenderSelectorNarrowsNamespaces(t *testing.T) {
	front := &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "front"}}
	policies := []fv1.Policy{
		pol("alice", fv1.PolicyAccess, groupProd, func(s *fv1.PolicySpec) {
			s.NamespaceSelector = front
			s.Access = &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "alice"}}}
		}),
		pol("q", fv1.PolicyQuota, clusterA, func(s *fv1.PolicySpec) {
			s.NamespaceSelector = front
			s.Quota = &fv1.QuotaSpec{Preset: "small"}
		}),
	}
	d := Render(policies, []Namespace{web, api})
	if _, ok := find[*rbacv1.RoleBinding](d.Objects, "flotilla-alice", "web"); !ok {
		t.Error("no RoleBinding in web, whose labels match")
	}
	if _, ok := find[*rbacv1.RoleBinding](d.Objects, "flotilla-alice", "api"); ok {
		t.Error("RoleBinding in api, whose labels do not match")
	}
	rq, ok := find[*corev1.ResourceQuota](d.Objects, "flotilla-quota", "web")
	if !ok {
		t.Fatal("no quota in web")
	}
	if got := rq.Annotations[SourcesAnnotation]; got != "pods=q,requests.cpu=q,requests.memory=q" {
		t.Errorf("sources = %q", got)
	}
	if _, ok := find[*corev1.ResourceQuota](d.Objects, "flotilla-quota", "api"); ok {
		t.Error("quota in api, whose labels do not match")
	}
}

func TestRenderSecurityRulesAndLevels(t *testing.T) {
	policies := []fv1.Policy{
		pol("base", fv1.PolicySecurity, groupProd, security("baseline", fv1.ModeEnforce)),
		pol("strict", fv1.PolicySecurity, org, func(s *fv1.PolicySpec) {
			s.Mode = fv1.ModeAudit
			s.Security = &fv1.SecuritySpec{Level: "restricted", DisallowPrivileged: true, Capabilities: &fv1.CapabilitiesRule{Allowed: []string{"NET_BIND_SERVICE"}}}
		}),
	}
	d := Render(policies, []Namespace{web})
	ps := d.PodSecurity["web"]
	if ps.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || ps.EnforcedBy != "base" || ps.AuditedBy != "strict" {
		t.Errorf("pod security = %+v", ps)
	}
	vap, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](d.Objects, "flotilla-strict", "")
	if !ok || len(vap.Spec.Validations) != 2 {
		t.Fatalf("want a VAP with 2 rules for strict, got %v", vap)
	}
	b, _ := find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](d.Objects, "flotilla-strict", "")
	if len(b.Spec.ValidationActions) != 2 || b.Spec.ValidationActions[0] != admissionregistrationv1.Audit {
		t.Errorf("audit mode must not deny: %v", b.Spec.ValidationActions)
	}
	if _, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](d.Objects, "flotilla-base", ""); ok {
		t.Error("a level alone needs no VAP")
	}
}

func TestRenderNetworkCustom(t *testing.T) {
	custom := networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, Egress: []networkingv1.NetworkPolicyEgressRule{{}}}
	d := Render([]fv1.Policy{pol("n", fv1.PolicyNetwork, wsShop, func(s *fv1.PolicySpec) {
		s.Network = &fv1.NetworkSpec{Recipe: "custom", Custom: &custom}
	})}, []Namespace{web})
	np, ok := find[*networkingv1.NetworkPolicy](d.Objects, "flotilla-n", "web")
	if !ok || len(np.Spec.Egress) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeEgress {
		t.Errorf("custom recipe not rendered: %+v", np)
	}
}

func TestRenderMutationsInOrder(t *testing.T) {
	policies := []fv1.Policy{
		pol("o", fv1.PolicyMutation, org, func(s *fv1.PolicySpec) {
			s.Mutation = &fv1.MutationSpec{AddLabels: map[string]string{"owner": "platform"}}
		}),
		pol("c", fv1.PolicyMutation, clusterA, func(s *fv1.PolicySpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "front"}}
			s.Mutation = &fv1.MutationSpec{PodSecurityContext: &fv1.PodSecurityDefaults{RunAsNonRoot: ptr.To(true), SeccompProfile: "RuntimeDefault"}}
		}),
	}
	d := Render(policies, []Namespace{web})
	m, ok := find[*admissionregistrationv1.MutatingAdmissionPolicy](d.Objects, MutationsName, "")
	if !ok || len(m.Spec.Mutations) != 2 {
		t.Fatalf("want one MutatingAdmissionPolicy with 2 mutations, got %+v", m)
	}
	first, second := m.Spec.Mutations[0].ApplyConfiguration.Expression, m.Spec.Mutations[1].ApplyConfiguration.Expression
	if !strings.Contains(first, "runAsNonRoot") || !strings.Contains(first, `namespaceObject.metadata.labels["tier"] == "front"`) {
		t.Errorf("cluster mutation first, with its selector: %s", first)
	}
	if !strings.Contains(second, `"owner": "platform"`) {
		t.Errorf("organization mutation second: %s", second)
	}
	if _, ok := find[*admissionregistrationv1.MutatingAdmissionPolicyBinding](d.Objects, MutationsName, ""); !ok {
		t.Error("no binding")
	}
}

func TestComplianceOf(t *testing.T) {
	p := pol("img", fv1.PolicyImageRegistry, wsShop, nil)
	other := Namespace{Cluster: "b", Group: "dev", Name: "x", Workspace: "default"}
	views := []ClusterView{
		{Namespaces: []Namespace{web}, Report: &fv1.ClusterPolicyStatus{Insights: []fv1.Insight{
			{Policy: "img", Kind: fv1.InsightViolation}, {Policy: "img", Kind: fv1.InsightAuditHit}, {Policy: "other", Kind: fv1.InsightViolation},
		}}},
		{Namespaces: []Namespace{{Cluster: "c", Group: "prod", Name: "web", Workspace: "shop"}}},
		{Namespaces: []Namespace{other}, Report: &fv1.ClusterPolicyStatus{Insights: []fv1.Insight{{Policy: "img", Kind: fv1.InsightViolation}}}},
	}
	got := ComplianceOf(&p, views)
	if !reflect.DeepEqual(got, Compliance{Clusters: 2, Noncompliant: 1, Violations: 2}) {
		t.Errorf("got %+v, want 2 clusters, 1 noncompliant, 2 violations", got)
	}
}

func TestRenderRuntimeClassRequiredOnAWorkspace(t *testing.T) {
	p := pol("boxed", fv1.PolicySecurity, wsShop, func(s *fv1.PolicySpec) {
		s.Security = &fv1.SecuritySpec{RequireRuntimeClass: "sandboxed"}
	})
	d := Render([]fv1.Policy{p}, []Namespace{api})
	if _, ok := d.PodSecurity["api"]; ok {
		t.Errorf("a runtime class rule set a Pod Security level: %+v", d.PodSecurity)
	}
	vap, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](d.Objects, "flotilla-boxed", "")
	if !ok || len(vap.Spec.Validations) != 1 {
		t.Fatalf("want a VAP with the runtime class rule, got %v", vap)
	}
	v := vap.Spec.Validations[0]
	if !strings.Contains(v.Expression, `object.spec.runtimeClassName == "sandboxed"`) || !strings.Contains(v.Message, "RuntimeClass sandboxed") {
		t.Errorf("rule %q, message %q", v.Expression, v.Message)
	}
	b, _ := find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](d.Objects, "flotilla-boxed", "")
	if sel := b.Spec.MatchResources.NamespaceSelector; sel == nil || sel.MatchLabels[fv1.LabelWorkspace] != "shop" {
		t.Errorf("the binding does not select the workspace's namespaces: %v", sel)
	}
	if other := Render([]fv1.Policy{p}, []Namespace{{Cluster: "b", Group: "dev", Name: "x", Workspace: "default"}}); len(other.Objects) != 0 {
		t.Errorf("rendered for a cluster without the workspace: %v", other.Objects)
	}
}
