package policycheck

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestCheck(t *testing.T) {
	org := fv1.PolicyScope{Organization: true}
	custom := func(expr string) fv1.PolicySpec {
		return fv1.PolicySpec{Type: fv1.PolicyCustom, Scope: org, Custom: &fv1.CustomSpec{Expression: expr, MatchKinds: []string{"apps/Deployment"}}}
	}
	cases := []struct {
		name string
		spec fv1.PolicySpec
		want string // empty: valid
	}{
		{"custom CEL compiles", custom("object.spec.replicas <= 5"), ""},
		{"custom CEL does not compile", custom("object.spec.replicas <= "), "compil"},
		{"custom CEL not boolean", custom("object.metadata.name"), "must evaluate to bool"},
		{"image registry", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: org, ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"r.example.com", "mirror.example.com/team-*/*"}, BlockLatest: true, RequireDigest: true}}, ""},
		{"security rules", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: org, Security: &fv1.SecuritySpec{
			DisallowPrivileged: true, DisallowHostNamespaces: true, RequireRunAsNonRoot: true, RequireReadOnlyRootFilesystem: true,
			Capabilities: &fv1.CapabilitiesRule{Allowed: []string{"NET_BIND_SERVICE"}},
		}}, ""},
		{"mutation", fv1.PolicySpec{Type: fv1.PolicyMutation, Scope: org, NamespaceSelector: &metav1.LabelSelector{
			MatchLabels:      map[string]string{"team": "a"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}},
		}, Mutation: &fv1.MutationSpec{AddLabels: map[string]string{"owner": "platform"}, PodSecurityContext: &fv1.PodSecurityDefaults{SeccompProfile: "RuntimeDefault"}}}, ""},
		{"mutation label key invalid", fv1.PolicySpec{Type: fv1.PolicyMutation, Scope: org, Mutation: &fv1.MutationSpec{AddLabels: map[string]string{"bad key!": "x"}}}, "spec.mutation.addLabels"},
		{"custom network policy invalid", fv1.PolicySpec{Type: fv1.PolicyNetwork, Scope: org, Network: &fv1.NetworkSpec{Recipe: "custom", Custom: &networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}}}},
		}}}, "ipBlock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := Check(&fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tc.spec})
			got := errs.ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("valid policy refused: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Errorf("want an error mentioning %q, got %v", tc.want, got)
			}
		})
	}
}
