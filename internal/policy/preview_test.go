package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestPreview(t *testing.T) {
	registry := func(mode fv1.PolicyMode, scope fv1.PolicyScope) *fv1.Policy {
		return &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "trusted", Generation: 3}, Spec: fv1.PolicySpec{
			Type: fv1.PolicyImageRegistry, Mode: mode, Scope: scope, ImageRegistry: &fv1.ImageRegistrySpec{BlockLatest: true}}}
	}
	shop := fv1.PolicyScope{Workspace: "shop"}
	nss := func(cluster string, wss ...string) []Namespace {
		var out []Namespace
		for i, ws := range wss {
			out = append(out, Namespace{Cluster: cluster, Group: "default", Name: fmt.Sprintf("ns%d", i), Workspace: ws})
		}
		return out
	}
	hit := func(pol, ns, obj string) fv1.Insight {
		return fv1.Insight{Policy: pol, Type: fv1.PolicyImageRegistry, Kind: fv1.InsightAuditHit, Namespace: ns, Object: obj, Message: "image must come from an allowed registry"}
	}
	obj := func(ns, o string) fv1.PreviewObject {
		return fv1.PreviewObject{Namespace: ns, Object: o, Message: "image must come from an allowed registry"}
	}
	report := func(gen int64, ins ...fv1.Insight) *fv1.ClusterPolicyStatus {
		r := &fv1.ClusterPolicyStatus{Insights: ins}
		if gen > 0 {
			r.Audited = map[string]int64{"trusted": gen, "other": 1}
		}
		return r
	}
	many := func(n int) []fv1.Insight {
		out := make([]fv1.Insight, n)
		for i := range out {
			out[i] = hit("trusted", "web", fmt.Sprintf("Pod/p%02d", i))
		}
		return out
	}

	cases := []struct {
		name        string
		policy      *fv1.Policy
		clusters    []ClusterView
		want        *fv1.PolicyPreview
		wantPending []string
	}{
		{name: "enforce mode has no preview", policy: registry(fv1.ModeEnforce, shop),
			clusters: []ClusterView{{Name: "a", Namespaces: nss("a", "shop"), Report: report(3, hit("trusted", "ns0", "Pod/x"))}}},
		{name: "a type that rejects nothing has no preview",
			policy: &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "q", Generation: 1}, Spec: fv1.PolicySpec{Type: fv1.PolicyQuota, Mode: fv1.ModeAudit, Scope: fv1.PolicyScope{Organization: true}}}},
		{name: "applies to no cluster", policy: registry(fv1.ModeAudit, shop),
			clusters: []ClusterView{{Name: "a", Namespaces: nss("a", "default")}},
			want:     &fv1.PolicyPreview{Generation: 3}},
		{name: "hits and clean clusters, sorted, other policies and kinds ignored", policy: registry(fv1.ModeAudit, shop),
			clusters: []ClusterView{
				{Name: "c", Namespaces: nss("c", "default", "shop"), Report: report(3, hit("trusted", "ns1", "Pod/b"), hit("trusted", "ns1", "Pod/a"),
					hit("other", "ns1", "Pod/z"), fv1.Insight{Policy: "trusted", Kind: fv1.InsightSyncError, Message: "x"})},
				{Name: "a", Namespaces: nss("a", "shop"), Report: report(3, hit("trusted", "ns0", "Deployment/web"))},
				{Name: "b", Namespaces: nss("b", "shop"), Report: report(3)},
				{Name: "outside", Namespaces: nss("outside", "default"), Report: report(0, hit("trusted", "ns0", "Pod/stale"))},
			},
			want: &fv1.PolicyPreview{Generation: 3, Clusters: 3, Reported: 3, Rejected: 3, Results: []fv1.ClusterPreview{
				{Cluster: "a", Rejected: 1, Objects: []fv1.PreviewObject{obj("ns0", "Deployment/web")}},
				{Cluster: "c", Rejected: 2, Objects: []fv1.PreviewObject{obj("ns1", "Pod/a"), obj("ns1", "Pod/b")}},
			}}},
		{name: "clusters without a report of this generation are pending, their hits kept", policy: registry(fv1.ModeAudit, shop),
			clusters: []ClusterView{
				{Name: "new", Namespaces: nss("new", "shop")},
				{Name: "old", Namespaces: nss("old", "shop"), Report: report(2, hit("trusted", "ns0", "Pod/x"))},
				{Name: "never", Namespaces: nss("never", "shop"), Report: report(0)},
				{Name: "done", Namespaces: nss("done", "shop"), Report: report(3)},
			},
			want: &fv1.PolicyPreview{Generation: 3, Clusters: 4, Reported: 1, Rejected: 1, Results: []fv1.ClusterPreview{
				{Cluster: "old", Rejected: 1, Objects: []fv1.PreviewObject{obj("ns0", "Pod/x")}},
			}},
			wantPending: []string{"never", "new", "old"}},
		{name: "system namespaces are never governed", policy: registry(fv1.ModeAudit, fv1.PolicyScope{Organization: true}),
			clusters: []ClusterView{{Name: "a", Namespaces: []Namespace{{Cluster: "a", Name: "kube-system", Workspace: "default"}}}},
			want:     &fv1.PolicyPreview{Generation: 3}},
		{name: "objects bounded per cluster, all counted", policy: registry(fv1.ModeAudit, shop),
			clusters: []ClusterView{{Name: "a", Namespaces: nss("a", "shop"), Report: report(3, many(fv1.MaxPreviewObjects+5)...)}},
			want: func() *fv1.PolicyPreview {
				r := fv1.ClusterPreview{Cluster: "a", Rejected: fv1.MaxPreviewObjects + 5}
				for _, in := range many(fv1.MaxPreviewObjects) {
					r.Objects = append(r.Objects, obj(in.Namespace, in.Object))
				}
				return &fv1.PolicyPreview{Generation: 3, Clusters: 1, Reported: 1, Rejected: fv1.MaxPreviewObjects + 5, Results: []fv1.ClusterPreview{r}}
			}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, pending := Preview(tc.policy, tc.clusters)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("preview =\n%+v\nwant\n%+v", got, tc.want)
			}
			if !reflect.DeepEqual(pending, tc.wantPending) {
				t.Errorf("pending = %v, want %v", pending, tc.wantPending)
			}
		})
	}
}

func TestPreviewBoundsClustersAndMessages(t *testing.T) {
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 1}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyCustom, Mode: fv1.ModeAudit, Scope: fv1.PolicyScope{Organization: true}}}
	var clusters []ClusterView
	for i := range fv1.MaxPreviewClusters + 10 {
		name := fmt.Sprintf("c%03d", i)
		clusters = append(clusters, ClusterView{Name: name, Namespaces: []Namespace{{Cluster: name, Name: "web"}},
			Report: &fv1.ClusterPolicyStatus{Audited: map[string]int64{"p": 1}, Insights: []fv1.Insight{
				{Policy: "p", Kind: fv1.InsightAuditHit, Namespace: "web", Object: "Pod/x", Message: strings.Repeat("é", 2000)}}}})
	}
	got, pending := Preview(p, clusters)
	if got.Clusters != fv1.MaxPreviewClusters+10 || got.Reported != got.Clusters || got.Rejected != got.Clusters || len(pending) != 0 {
		t.Errorf("counts = %d clusters, %d reported, %d rejected, pending %v", got.Clusters, got.Reported, got.Rejected, pending)
	}
	if len(got.Results) != fv1.MaxPreviewClusters || got.Results[0].Cluster != "c000" {
		t.Errorf("%d results, first %q", len(got.Results), got.Results[0].Cluster)
	}
	m := got.Results[0].Objects[0].Message
	if len(m) > previewMessageMax || !strings.HasSuffix(m, "…") || !utf8.ValidString(m) {
		t.Errorf("message of %d bytes not cut to %d on a character boundary", len(m), previewMessageMax)
	}
}
