package policy

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func pol(name string, t fv1.PolicyType, scope fv1.PolicyScope, mut func(*fv1.PolicySpec)) fv1.Policy {
	p := fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.PolicySpec{Type: t, Scope: scope, Mode: fv1.ModeEnforce}}
	if mut != nil {
		mut(&p.Spec)
	}
	return p
}

var (
	org       = fv1.PolicyScope{Organization: true}
	groupProd = fv1.PolicyScope{ClusterGroup: "prod"}
	clusterA  = fv1.PolicyScope{Cluster: "a"}
	wsShop    = fv1.PolicyScope{Workspace: "shop"}
	nsAWeb    = fv1.PolicyScope{Namespace: &fv1.NamespaceRef{Cluster: "a", Name: "web"}}
	web       = Namespace{Cluster: "a", Group: "prod", Name: "web", Workspace: "shop", Labels: map[string]string{"tier": "front"}}
)

func security(level string, mode fv1.PolicyMode) func(*fv1.PolicySpec) {
	return func(s *fv1.PolicySpec) { s.Security = &fv1.SecuritySpec{Level: level}; s.Mode = mode }
}

func TestForNamespaceBothTrees(t *testing.T) {
	policies := []fv1.Policy{
		pol("n", fv1.PolicyAccess, nsAWeb, nil),
		pol("w", fv1.PolicyImageRegistry, wsShop, nil),
		pol("c", fv1.PolicyQuota, clusterA, nil),
		pol("g", fv1.PolicySecurity, groupProd, nil),
		pol("o", fv1.PolicyNetwork, org, nil),
		pol("other-group", fv1.PolicySecurity, fv1.PolicyScope{ClusterGroup: "dev"}, nil),
		pol("other-cluster", fv1.PolicyQuota, fv1.PolicyScope{Cluster: "b"}, nil),
		pol("other-ws", fv1.PolicyNetwork, fv1.PolicyScope{Workspace: "blog"}, nil),
		pol("other-ns", fv1.PolicyAccess, fv1.PolicyScope{Namespace: &fv1.NamespaceRef{Cluster: "b", Name: "web"}}, nil),
		pol("selected-out", fv1.PolicyNetwork, org, func(s *fv1.PolicySpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "back"}}
		}),
		pol("selected-in", fv1.PolicyNetwork, org, func(s *fv1.PolicySpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"front"}}}}
		}),
	}
	got := ForNamespace(policies, web)
	want := []struct{ name, from string }{
		{"o", "organization"}, {"selected-in", "organization"}, {"g", "cluster group prod"},
		{"c", "cluster a"}, {"w", "workspace shop"}, {"n", "namespace a/web"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d effective policies, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Policy.Name != w.name || got[i].From.String() != w.from {
			t.Errorf("#%d = %s from %s, want %s from %s", i, got[i].Policy.Name, got[i].From, w.name, w.from)
		}
	}
}

func TestSecurityMostRestrictiveWins(t *testing.T) {
	cases := []struct {
		name             string
		policies         []fv1.Policy
		enforce, auditLv string
	}{
		{"none", nil, "", ""},
		{"one baseline", []fv1.Policy{pol("g", fv1.PolicySecurity, groupProd, security("baseline", fv1.ModeEnforce))}, "baseline", "baseline"},
		{"child cannot relax parent", []fv1.Policy{
			pol("o", fv1.PolicySecurity, org, security("restricted", fv1.ModeEnforce)),
			pol("c", fv1.PolicySecurity, clusterA, security("baseline", fv1.ModeEnforce)),
		}, "restricted", "restricted"},
		{"child tightens parent", []fv1.Policy{
			pol("o", fv1.PolicySecurity, org, security("baseline", fv1.ModeEnforce)),
			pol("c", fv1.PolicySecurity, clusterA, security("restricted", fv1.ModeEnforce)),
		}, "restricted", "restricted"},
		{"audit rejects nothing", []fv1.Policy{pol("g", fv1.PolicySecurity, groupProd, security("baseline", fv1.ModeAudit))}, "", "baseline"},
		{"audit above enforce", []fv1.Policy{
			pol("o", fv1.PolicySecurity, org, security("baseline", fv1.ModeEnforce)),
			pol("g", fv1.PolicySecurity, groupProd, security("restricted", fv1.ModeAudit)),
		}, "baseline", "restricted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := SecurityLevels(ForNamespace(tc.policies, web))
			if l.Enforce != tc.enforce || l.Audit != tc.auditLv {
				t.Errorf("enforce %q audit %q, want %q %q", l.Enforce, l.Audit, tc.enforce, tc.auditLv)
			}
		})
	}
}

func TestQuotaMostRestrictivePerResource(t *testing.T) {
	custom := func(cpu, mem string, pods int64) func(*fv1.PolicySpec) {
		return func(s *fv1.PolicySpec) {
			s.Quota = &fv1.QuotaSpec{}
			if cpu != "" {
				c := resource.MustParse(cpu)
				s.Quota.CPU = &c
			}
			if mem != "" {
				m := resource.MustParse(mem)
				s.Quota.Memory = &m
			}
			if pods > 0 {
				s.Quota.Pods = &pods
			}
		}
	}
	preset := func(name string) func(*fv1.PolicySpec) {
		return func(s *fv1.PolicySpec) { s.Quota = &fv1.QuotaSpec{Preset: name} }
	}
	cases := []struct {
		name           string
		policies       []fv1.Policy
		cpu, mem, pods string
	}{
		{"preset", []fv1.Policy{pol("o", fv1.PolicyQuota, org, preset("medium"))}, "8", "16Gi", "50"},
		{"min per resource", []fv1.Policy{
			pol("o", fv1.PolicyQuota, org, preset("small")),
			pol("c", fv1.PolicyQuota, clusterA, custom("1", "8Gi", 0)),
		}, "1", "4Gi", "20"},
		{"unset stays unlimited", []fv1.Policy{pol("c", fv1.PolicyQuota, clusterA, custom("", "1Gi", 0))}, "", "1Gi", ""},
	}
	min := []fv1.Policy{pol("o", fv1.PolicyQuota, org, preset("small")), pol("c", fv1.PolicyQuota, clusterA, custom("1", "8Gi", 0))}
	if got, _ := QuotaFor(ForNamespace(min, web)); got.Sources["requests.cpu"] != "c" || got.Sources["requests.memory"] != "o" || got.Sources["pods"] != "o" {
		t.Errorf("sources = %v, want cpu from c, memory and pods from o", got.Sources)
	}
	str := func(q *resource.Quantity) string {
		if q == nil {
			return ""
		}
		return q.String()
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := QuotaFor(ForNamespace(tc.policies, web))
			pods := ""
			if got.Pods != nil {
				pods = resource.NewQuantity(*got.Pods, resource.DecimalSI).String()
			}
			if !ok || str(got.CPU) != tc.cpu || str(got.Memory) != tc.mem || pods != tc.pods {
				t.Errorf("got cpu %q mem %q pods %q, want %q %q %q", str(got.CPU), str(got.Memory), pods, tc.cpu, tc.mem, tc.pods)
			}
		})
	}
}

func TestAdditiveAndMutationOrder(t *testing.T) {
	policies := []fv1.Policy{
		pol("o-access", fv1.PolicyAccess, org, nil),
		pol("g-access", fv1.PolicyAccess, groupProd, nil),
		pol("o-mut", fv1.PolicyMutation, org, nil),
		pol("c-mut", fv1.PolicyMutation, clusterA, nil),
		pol("g-mut", fv1.PolicyMutation, groupProd, nil),
	}
	eff := ForNamespace(policies, web)
	if n := len(OfType(eff, fv1.PolicyAccess)); n != 2 {
		t.Errorf("access is additive: got %d", n)
	}
	var order []string
	for _, e := range MutationOrder(eff) {
		order = append(order, e.Policy.Name)
	}
	if len(order) != 3 || order[0] != "c-mut" || order[1] != "g-mut" || order[2] != "o-mut" {
		t.Errorf("mutation order = %v, want cluster, group, organization", order)
	}
}
