package controller

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestReviewAgentCSR(t *testing.T) {
	ok := csrRequest{Cluster: "a", Orgs: []string{fv1.AgentGroup, fv1.AttachGroup("uid-2")}, Attach: "uid-2",
		Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}, Lifetime: 24 * time.Hour, Requestor: "system:bootstrap:abc"}
	with := func(f func(*csrRequest)) csrRequest { r := ok; f(&r); return r }
	rotation := func(r *csrRequest) {
		r.Requestor, r.RequestorGroups, r.RequestorCert = fv1.AgentUser("a"), []string{fv1.AgentGroup, fv1.AttachGroup("uid-2")}, "cur"
	}
	nameOnly := func(r *csrRequest) { r.Orgs, r.Attach = []string{fv1.AgentGroup}, "" }
	fresh := tokenState{Found: true, Cluster: "a"}
	attached := clusterState{Exists: true, UID: "uid-2", Current: "cur", MaxLifetime: 24 * time.Hour}
	withCluster := func(f func(*clusterState)) clusterState { c := attached; f(&c); return c }
	legacy := withCluster(func(c *clusterState) { c.NameOnly = true })
	cases := []struct {
		name    string
		req     csrRequest
		tok     tokenState
		cluster clusterState
		approve bool
		reason  string
	}{
		{"valid bootstrap", ok, fresh, attached, true, "AgentRegistered"},
		{"reused token", ok, tokenState{Found: true, Cluster: "a", Used: true}, attached, false, "BootstrapReused"},
		{"token spent on this request, approval written again", ok, tokenState{Found: true, Cluster: "a", Used: true, UsedByThis: true}, attached, true, "AgentRegistered"},
		{"token of another cluster", ok, tokenState{Found: true, Cluster: "b"}, attached, false, "BootstrapMismatch"},
		{"token not issued by the hub", ok, tokenState{}, attached, false, "BootstrapUnknown"},
		{"cluster not attached", ok, fresh, clusterState{}, false, "UnknownCluster"},
		{"extra group", with(func(r *csrRequest) { r.Orgs = []string{fv1.AgentGroup, "system:masters"} }), fresh, attached, false, "BadSubject"},
		{"two attach groups", with(func(r *csrRequest) { r.Orgs = append(r.Orgs, fv1.AttachGroup("uid-1")) }), fresh, attached, false, "BadSubject"},
		{"server usage", with(func(r *csrRequest) { r.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth} }), fresh, attached, false, "BadUsage"},
		{"bootstrap of an earlier attach", with(func(r *csrRequest) { r.Orgs, r.Attach = []string{fv1.AgentGroup, fv1.AttachGroup("uid-1")}, "uid-1" }), fresh, attached, false, "StaleAttach"},
		{"bootstrap naming no attach", with(nameOnly), fresh, attached, false, "AttachMissing"},
		{"bootstrap naming no attach, cluster of an earlier version", with(nameOnly), fresh, legacy, true, "AgentRegistered"},
		{"a year asked", with(func(r *csrRequest) { r.Lifetime = 365 * 24 * time.Hour }), fresh, attached, false, "LifetimeTooLong"},
		{"no lifetime asked", with(func(r *csrRequest) { r.Lifetime = 0 }), fresh, attached, false, "LifetimeTooLong"},
		{"second request in flight", ok, fresh, withCluster(func(c *clusterState) { c.Outstanding = true }), false, "RequestOutstanding"},
		{"rotation by the agent itself", with(rotation), tokenState{}, attached, true, "AgentRotation"},
		{"rotation before the hub recorded a certificate", with(rotation), tokenState{}, withCluster(func(c *clusterState) { c.Current = "" }), true, "AgentRotation"},
		{"rotation by a superseded certificate", with(func(r *csrRequest) { rotation(r); r.RequestorCert = "old" }), tokenState{}, attached, false, "NotCurrentCertificate"},
		{"rotation with another in flight", with(rotation), tokenState{}, withCluster(func(c *clusterState) { c.Outstanding = true }), false, "RequestOutstanding"},
		{"rotation by a certificate of an earlier attach", with(func(r *csrRequest) {
			rotation(r)
			r.RequestorGroups = []string{fv1.AgentGroup, fv1.AttachGroup("uid-1")}
		}), tokenState{}, attached, false, "StaleIdentity"},
		{"rotation by a name-only certificate", with(func(r *csrRequest) { rotation(r); nameOnly(r); r.RequestorGroups = []string{fv1.AgentGroup} }), tokenState{}, attached, false, "AttachMissing"},
		{"rotation of a name-only identity, cluster of an earlier version", with(func(r *csrRequest) { rotation(r); nameOnly(r); r.RequestorGroups = []string{fv1.AgentGroup} }), tokenState{}, legacy, true, "AgentRotation"},
		{"another agent asking for a's identity", with(func(r *csrRequest) { r.Requestor = fv1.AgentUser("b") }), tokenState{}, attached, false, "ForeignCluster"},
		{"someone else's request", with(func(r *csrRequest) { r.Requestor = "alice" }), tokenState{}, attached, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := reviewAgentCSR(tc.req, tc.tok, tc.cluster)
			if v.Approve != tc.approve || v.Reason != tc.reason || v.Deny == (tc.reason == "" || tc.approve) {
				t.Errorf("got approve=%v deny=%v reason=%q (%s), want approve=%v reason=%q", v.Approve, v.Deny, v.Reason, v.Message, tc.approve, tc.reason)
			}
		})
	}
}
