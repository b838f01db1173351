package heartbeat

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestStatus(t *testing.T) {
	now := time.Now()
	healthy := &Report{IntervalSeconds: 10, Reachable: true, KubernetesVersion: "v1.37.2", Nodes: fv1.NodeCounts{Total: 2, Ready: 2}}
	cases := []struct {
		name       string
		obs        Observation
		want       fv1.Health
		cond       string
		condReason string
	}{
		{"never reported, within grace", Observation{Seen: now.Add(-5 * time.Second)}, fv1.HealthUnknown, fv1.ClusterConditionAgentConnected, ""},
		{"never reported, 3 beats missed", Observation{Seen: now.Add(-31 * time.Second)}, fv1.HealthDisconnected, fv1.ClusterConditionAgentConnected, "HeartbeatMissed"},
		{"healthy", Observation{Seen: now, Report: healthy}, fv1.HealthHealthy, fv1.ClusterConditionHealthy, "AllChecksPass"},
		{"missed 3 beats of its own interval", Observation{Seen: now.Add(-4 * time.Second), Report: &Report{IntervalSeconds: 1, Reachable: true}}, fv1.HealthDisconnected, fv1.ClusterConditionAgentConnected, "HeartbeatMissed"},
		{"an interval past the hub's limit counts as the limit", Observation{Seen: now.Add(-3*MaxInterval - time.Second), Report: &Report{IntervalSeconds: 86400, Reachable: true}}, fv1.HealthDisconnected, fv1.ClusterConditionAgentConnected, "HeartbeatMissed"},
		{"2 beats late is still connected", Observation{Seen: now.Add(-25 * time.Second), Report: healthy}, fv1.HealthHealthy, fv1.ClusterConditionAgentConnected, "Heartbeating"},
		{"apiserver unreachable", Observation{Seen: now, Report: &Report{Reachable: false, Error: "refused"}}, fv1.HealthUnhealthy, fv1.ClusterConditionHealthy, "APIServerUnreachable"},
		{"failing check", Observation{Seen: now, Report: &Report{Reachable: true, Failing: []string{"kube-apiserver: etcd failed"}}}, fv1.HealthUnhealthy, fv1.ClusterConditionHealthy, "ComponentFailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Status(now, tc.obs, fv1.ClusterStatus{Health: fv1.HealthUnknown})
			if s.Health != tc.want {
				t.Errorf("health = %s, want %s", s.Health, tc.want)
			}
			c := meta.FindStatusCondition(s.Conditions, tc.cond)
			if tc.condReason == "" {
				if c != nil {
					t.Errorf("unexpected condition %+v", c)
				}
				return
			}
			if c == nil || c.Reason != tc.condReason {
				t.Errorf("condition %s = %+v, want reason %s", tc.cond, c, tc.condReason)
			}
		})
	}
	// The failing component is named.
	s := Status(now, Observation{Seen: now, Report: &Report{Reachable: true, Failing: []string{"kube-apiserver: etcd failed"}}}, fv1.ClusterStatus{})
	if c := meta.FindStatusCondition(s.Conditions, fv1.ClusterConditionHealthy); c == nil || c.Message != "kube-apiserver: etcd failed" {
		t.Errorf("message does not name the component: %+v", c)
	}
}
