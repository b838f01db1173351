package policy

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// A cluster attached read-only is sent no object, only the policies that
// apply to it, which its agent reports not enforced.
func TestRenderReadOnly(t *testing.T) {
	two := resource.MustParse("2")
	policies := []fv1.Policy{
		pol("quota", fv1.PolicyQuota, clusterA, func(s *fv1.PolicySpec) { s.Quota = &fv1.QuotaSpec{CPU: &two} }),
		pol("access", fv1.PolicyAccess, groupProd, func(s *fv1.PolicySpec) {
			s.Access = &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "alice"}}}
		}),
		pol("baseline", fv1.PolicySecurity, org, security("baseline", fv1.ModeEnforce)),
		pol("elsewhere", fv1.PolicyQuota, fv1.PolicyScope{Cluster: "b"}, func(s *fv1.PolicySpec) { s.Quota = &fv1.QuotaSpec{CPU: &two} }),
	}
	nss := []Namespace{web}
	if full := Render(policies, nss); len(full.Objects) == 0 || len(full.PodSecurity) == 0 {
		t.Fatalf("the same policies render nothing for a cluster that is not read-only: %+v", full)
	}
	d := RenderReadOnly(policies, nss, "a")
	if len(d.Objects) != 0 || len(d.PodSecurity) != 0 || len(d.Audits) != 0 {
		t.Errorf("a read-only cluster is sent something to apply: %+v", d)
	}
	data, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	objs, ps, err := Decode(data)
	if err != nil || len(objs) != 0 || len(ps) != 0 {
		t.Errorf("decoded %d objects, %d namespaces' Pod Security, %v", len(objs), len(ps), err)
	}
	ne, err := DecodeNotEnforced(data)
	if err != nil || ne == nil {
		t.Fatalf("not enforced: %+v, %v", ne, err)
	}
	want := []PolicyRef{{"access", fv1.PolicyAccess}, {"baseline", fv1.PolicySecurity}, {"quota", fv1.PolicyQuota}}
	if !reflect.DeepEqual(ne.Policies, want) {
		t.Errorf("policies %v, want %v", ne.Policies, want)
	}
	if ne.Reason != fv1.ReasonReadOnlyAttach || ne.Message != "cluster a is attached read-only: the agent may not create objects in it" {
		t.Errorf("reason %q message %q", ne.Reason, ne.Message)
	}
	for i, in := range ne.Insights() {
		if in.Policy != want[i].Name || in.Type != want[i].Type || in.Kind != fv1.InsightNotEnforced || in.Reason != fv1.ReasonReadOnlyAttach || in.Message != ne.Message {
			t.Errorf("insight %d = %+v", i, in)
		}
	}

	// A cluster that is not read-only is told nothing of the kind.
	full, err := Encode(Render(policies, nss))
	if err != nil {
		t.Fatal(err)
	}
	if ne, err := DecodeNotEnforced(full); ne != nil || err != nil {
		t.Errorf("not enforced in a full render: %+v, %v", ne, err)
	}
	// What an agent run --read-only reports when its hub renders objects
	// all the same: the policies behind them.
	refs, err := PoliciesIn(full)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("policies in a full render %v, want %v", refs, want)
	}
}

func TestComplianceAndPreviewOfReadOnlyClusters(t *testing.T) {
	p := pol("img", fv1.PolicyImageRegistry, wsShop, func(s *fv1.PolicySpec) { s.Mode = fv1.ModeAudit })
	notEnforced := &fv1.ClusterPolicyStatus{Synced: "False", Insights: []fv1.Insight{
		{Policy: "img", Type: fv1.PolicyImageRegistry, Kind: fv1.InsightNotEnforced, Reason: fv1.ReasonReadOnlyAttach, Message: ReadOnlyMessage("ro")},
	}}
	views := []ClusterView{
		{Name: "rw", Namespaces: []Namespace{web}, Report: &fv1.ClusterPolicyStatus{Audited: map[string]int64{"img": 0}}},
		{Name: "ro", ReadOnly: true, Namespaces: []Namespace{{Cluster: "ro", Group: "prod", Name: "web", Workspace: "shop"}}, Report: notEnforced},
	}
	got := ComplianceOf(&p, views)
	want := Compliance{Clusters: 2, NotEnforced: []string{"ro"}, NotEnforcedReason: fv1.ReasonReadOnlyAttach}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("compliance %+v, want %+v", got, want)
	}
	pv, pending := Preview(&p, views)
	if pv == nil || pv.Clusters != 1 || pv.Reported != 1 || len(pending) != 0 {
		t.Errorf("preview %+v pending %v: a read-only cluster, which never enforces the policy, must not hold it up", pv, pending)
	}
	if !strings.Contains(ReadOnlyMessage("ro"), "read-only") {
		t.Error(ReadOnlyMessage("ro"))
	}
}
