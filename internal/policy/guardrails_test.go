package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestPodRulesMatchEphemeralContainers(t *testing.T) {
	policies := []fv1.Policy{
		pol("img", fv1.PolicyImageRegistry, org, func(s *fv1.PolicySpec) { s.ImageRegistry = &fv1.ImageRegistrySpec{BlockLatest: true} }),
		pol("sec", fv1.PolicySecurity, clusterA, func(s *fv1.PolicySpec) { s.Security = &fv1.SecuritySpec{DisallowPrivileged: true} }),
		pol("pods", fv1.PolicyCustom, clusterA, func(s *fv1.PolicySpec) {
			s.Custom = &fv1.CustomSpec{MatchKinds: []string{"Pod", "apps/Deployment"}, Expression: "true"}
		}),
	}
	d := Render(policies, []Namespace{web})
	for _, name := range []string{"flotilla-img", "flotilla-sec", "flotilla-pods"} {
		vap, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](d.Objects, name, "")
		if !ok {
			t.Fatalf("no %s", name)
		}
		var resources []string
		for _, r := range vap.Spec.MatchConstraints.ResourceRules {
			resources = append(resources, r.Resources...)
		}
		if !slices.Contains(resources, "pods/ephemeralcontainers") {
			t.Errorf("%s matches %v: ephemeral containers bypass it", name, resources)
		}
	}
}

func TestExemptionsRender(t *testing.T) {
	p := pol("img", fv1.PolicyImageRegistry, org, func(s *fv1.PolicySpec) {
		s.ImageRegistry = &fv1.ImageRegistrySpec{BlockLatest: true}
		s.Exemptions = &fv1.Exemptions{Images: []string{"tools.example.com/*", "busybox:1.36"}, Namespaces: []string{"web"}}
	})
	d := Render([]fv1.Policy{p}, []Namespace{web, api})
	vap, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](d.Objects, "flotilla-img", "")
	if !ok {
		t.Fatal("no admission policy")
	}
	v := vap.Spec.Validations[0]
	for _, want := range []string{`c.image.startsWith("tools.example.com/")`, `c.image == "busybox:1.36"`} {
		if !strings.Contains(v.Expression, want) {
			t.Errorf("expression lacks %s: %s", want, v.Expression)
		}
	}
	if !strings.HasSuffix(v.Message, "(exempt: images tools.example.com/*, busybox:1.36; namespaces web)") {
		t.Errorf("message = %q", v.Message)
	}
	b, _ := find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](d.Objects, "flotilla-img", "")
	exempted := false
	for _, r := range b.Spec.MatchResources.NamespaceSelector.MatchExpressions {
		exempted = exempted || (r.Key == corev1.LabelMetadataName && r.Operator == "NotIn" && slices.Contains(r.Values, "web"))
	}
	if !exempted {
		t.Errorf("binding selector does not leave out web: %+v", b.Spec.MatchResources.NamespaceSelector)
	}
	if eff := ForNamespace([]fv1.Policy{p}, web); len(eff) != 0 {
		t.Errorf("the policy applies to the namespace it exempts: %v", eff)
	}
	if ex := ExemptFor([]fv1.Policy{p}, web); len(ex) != 1 {
		t.Errorf("ExemptFor(web) = %v", ex)
	}
	// A Pod Security level is not set on an exempt namespace.
	lvl := pol("lvl", fv1.PolicySecurity, org, func(s *fv1.PolicySpec) {
		s.Security = &fv1.SecuritySpec{Level: "baseline"}
		s.Exemptions = &fv1.Exemptions{Namespaces: []string{"web"}}
	})
	d = Render([]fv1.Policy{lvl}, []Namespace{web, api})
	if _, ok := d.PodSecurity["web"]; ok {
		t.Error("Pod Security labels on an exempt namespace")
	}
	if _, ok := d.PodSecurity["api"]; !ok {
		t.Error("no Pod Security labels on api")
	}
}

func TestAuditsCarryGenerations(t *testing.T) {
	audit := pol("aud", fv1.PolicyImageRegistry, org, func(s *fv1.PolicySpec) {
		s.Mode, s.ImageRegistry = fv1.ModeAudit, &fv1.ImageRegistrySpec{BlockLatest: true}
	})
	audit.Generation = 4
	access := pol("acc", fv1.PolicyAccess, org, func(s *fv1.PolicySpec) {
		s.Mode, s.Access = fv1.ModeAudit, &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "a"}}}
	})
	d := Render([]fv1.Policy{audit, access}, []Namespace{web})
	data, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAudits(data)
	if err != nil || len(got) != 1 || got["aud"] != 4 {
		t.Errorf("audits = %v, %v; want aud at generation 4 only", got, err)
	}
}

func TestJudgeChanges(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"object.spec.replicas <= 10",
			"(object.spec.replicas <= 10) || (oldObject != null && (!has(object.spec) || (has(oldObject.spec) && object.spec == oldObject.spec)) && !(oldObject.spec.replicas <= 10))"},
		// Strings and fields named object stay as they are.
		{"object.metadata.name != 'object' && has(object.x.object)",
			"(object.metadata.name != 'object' && has(object.x.object)) || (oldObject != null && (!has(object.spec) || (has(oldObject.spec) && object.spec == oldObject.spec)) && !(oldObject.metadata.name != 'object' && has(oldObject.x.object)))"},
		// A rule that speaks of updates itself is left alone.
		{"oldObject == null || object.x == oldObject.x", "oldObject == null || object.x == oldObject.x"},
		{"request.operation != 'UPDATE' || object.x", "request.operation != 'UPDATE' || object.x"},
		{"object.(", "object.("},
	} {
		if got := judgeChanges(c.expr); got != c.want {
			t.Errorf("judgeChanges(%q)\n got %s\nwant %s", c.expr, got, c.want)
		}
	}
}

func TestResolveKinds(t *testing.T) {
	p := pol("c", fv1.PolicyCustom, clusterA, func(s *fv1.PolicySpec) {
		s.Custom = &fv1.CustomSpec{MatchKinds: []string{"zoo.example.com/Octopus", "Pod", "zoo.example.com/Squid"}, Expression: "true"}
	})
	objs := RenderOne(&p)
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: raw}
	served := map[schema.GroupKind]schema.GroupVersionResource{
		{Group: "zoo.example.com", Kind: "Octopus"}: {Group: "zoo.example.com", Version: "v2", Resource: "octopodes"},
		{Kind: "Pod"}: {Version: "v1", Resource: "pods"},
	}
	res, err := ResolveKinds(u, func(gk schema.GroupKind) (schema.GroupVersionResource, error) {
		if gvr, ok := served[gk]; ok {
			return gvr, nil
		}
		return schema.GroupVersionResource{}, errors.New("no matches")
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Governed) != 2 || res.Empty || len(res.NotServed) != 1 || res.NotServed["zoo.example.com/Squid"] == nil {
		t.Errorf("resolution = %+v", res)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "matchConstraints", "resourceRules")
	var got [][]any
	for _, r := range rules {
		got = append(got, r.(map[string]any)["resources"].([]any))
	}
	if len(got) != 2 || got[0][0] != "octopodes" || len(got[1]) != 2 || got[1][1] != "pods/ephemeralcontainers" {
		t.Errorf("rules' resources = %v", got)
	}
	_, err = ResolveKinds(u, func(schema.GroupKind) (schema.GroupVersionResource, error) {
		return schema.GroupVersionResource{}, errors.New("none")
	})
	if err == nil {
		t.Error("a policy whose rules were already rewritten resolved again without complaint")
	}
}
