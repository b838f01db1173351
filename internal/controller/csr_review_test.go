package controller

import (
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestReviewAgentCSR(t *testing.T) {
	ok := csrRequest{Cluster: "a", Orgs: []string{fv1.AgentGroup}, Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}, Requestor: "system:bootstrap:abc"}
	with := func(f func(*csrRequest)) csrRequest { r := ok; f(&r); return r }
	fresh := tokenState{Found: true, Cluster: "a"}
	cases := []struct {
		name    string
		req     csrRequest
		tok     tokenState
		exists  bool
		approve bool
		reason  string
	}{
		{"valid bootstrap", ok, fresh, true, true, "AgentRegistered"},
		{"reused token", ok, tokenState{Found: true, Cluster: "a", Used: true}, true, false, "BootstrapReused"},
		{"token spent on this request, approval written again", ok, tokenState{Found: true, Cluster: "a", Used: true, UsedByThis: true}, true, true, "AgentRegistered"},
		{"token of another cluster", ok, tokenState{Found: true, Cluster: "b"}, true, false, "BootstrapMismatch"},
		{"token not issued by the hub", ok, tokenState{}, true, false, "BootstrapUnknown"},
		{"cluster not attached", ok, fresh, false, false, "UnknownCluster"},
		{"extra group", with(func(r *csrRequest) { r.Orgs = []string{fv1.AgentGroup, "system:masters"} }), fresh, true, false, "BadSubject"},
		{"server usage", with(func(r *csrRequest) { r.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth} }), fresh, true, false, "BadUsage"},
		{"rotation by the agent itself", with(func(r *csrRequest) { r.Requestor = fv1.AgentUser("a") }), tokenState{}, true, true, "AgentRotation"},
		{"another agent asking for a's identity", with(func(r *csrRequest) { r.Requestor = fv1.AgentUser("b") }), tokenState{}, true, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := reviewAgentCSR(tc.req, tc.tok, tc.exists)
			if v.Approve != tc.approve || v.Reason != tc.reason {
				t.Errorf("got approve=%v deny=%v reason=%q, want approve=%v reason=%q", v.Approve, v.Deny, v.Reason, tc.approve, tc.reason)
			}
		})
	}
}
