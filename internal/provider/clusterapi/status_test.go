package clusterapi

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func spec() *fv1.ClusterLifecycle {
	return &fv1.ClusterLifecycle{
		Provider:     fv1.ProviderClusterAPI,
		Version:      "v1.36.3",
		ControlPlane: fv1.ControlPlane{Replicas: 1},
		ClusterAPI:   &fv1.ClusterAPITopology{KubeconfigSecret: "mgmt", Class: "quick-start"},
		NodePools:    []fv1.NodePool{{Name: "workers", Replicas: 2}, {Name: "gpu", Replicas: 1, Class: "gpu-workers"}},
	}
}

func TestDesiredIsTheManagedTopology(t *testing.T) {
	u := Desired("lab", spec())
	if u.GetAPIVersion() != "cluster.x-k8s.io/v1beta2" || u.GetKind() != "Cluster" || u.GetNamespace() != "default" || u.GetLabels()[fv1.LabelCluster] != "lab" {
		t.Fatalf("object: %v", u.Object)
	}
	topo, _, _ := unstructured.NestedMap(u.Object, "spec", "topology")
	want := map[string]any{
		"classRef":     map[string]any{"name": "quick-start"},
		"version":      "v1.36.3",
		"controlPlane": map[string]any{"replicas": int64(1)},
		"workers": map[string]any{"machineDeployments": []any{
			map[string]any{"class": "workers", "name": "workers", "replicas": int64(2)},
			map[string]any{"class": "gpu-workers", "name": "gpu", "replicas": int64(1)},
		}},
	}
	if !reflect.DeepEqual(topo, want) {
		t.Fatalf("topology:\n got %v\nwant %v", topo, want)
	}
}

// cluster is a Cluster API Cluster with status st.
func cluster(st map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"spec":   map[string]any{"controlPlaneEndpoint": map[string]any{"host": "10.0.0.1", "port": int64(6443)}},
		"status": st,
	}}
}

func cond(typ, status, reason, msg string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg}
}

func counts(desired, current, ready int64, versions ...any) map[string]any {
	m := map[string]any{"desiredReplicas": desired, "replicas": current, "readyReplicas": ready, "availableReplicas": ready, "upToDateReplicas": ready}
	if len(versions) > 0 {
		var vs []any
		for i := 0; i < len(versions); i += 2 {
			vs = append(vs, map[string]any{"version": versions[i], "replicas": versions[i+1]})
		}
		m["versions"] = vs
	}
	return m
}

func TestAssess(t *testing.T) {
	available := cond("Available", "True", "Available", "")
	for _, tc := range []struct {
		name     string
		status   map[string]any
		creating bool
		phase    fv1.LifecyclePhase
		progress string
		message  string // part of the Ready condition's message, if any
	}{
		{name: "new", creating: true, status: map[string]any{}, phase: fv1.LifecycleProvisioning, progress: "waiting for Cluster API to take the cluster"},
		{name: "infrastructure", creating: true, status: map[string]any{"phase": "Provisioning", "conditions": []any{
			cond("InfrastructureReady", "False", "NotReady", "DockerCluster is not ready"), cond("Available", "False", "NotAvailable", "* InfrastructureReady: DockerCluster is not ready")}},
			phase: fv1.LifecycleProvisioning, progress: "waiting for the infrastructure", message: "DockerCluster is not ready"},
		{name: "machines", creating: true, status: map[string]any{"phase": "Provisioned", "controlPlane": counts(1, 1, 1), "workers": counts(3, 2, 1)},
			phase: fv1.LifecycleProvisioning, progress: "2/4 machines ready"},
		{name: "available while creating", creating: true, status: map[string]any{"phase": "Provisioned", "conditions": []any{available}},
			phase: fv1.LifecycleReady},
		{name: "ready", status: map[string]any{"phase": "Provisioned", "conditions": []any{available}, "controlPlane": counts(1, 1, 1, "v1.36.3", int64(1)), "workers": counts(3, 3, 3, "v1.36.3", int64(3))},
			phase: fv1.LifecycleReady, progress: "4/4 machines ready"},
		{name: "scaling", status: map[string]any{"phase": "Provisioned", "conditions": []any{available}, "controlPlane": counts(1, 1, 1), "workers": counts(2, 2, 2)},
			phase: fv1.LifecycleScaling, progress: "3/4 machines ready"},
		{name: "upgrading by versions", status: map[string]any{"phase": "Provisioned", "conditions": []any{available}, "controlPlane": counts(1, 1, 1, "v1.36.3", int64(1)), "workers": counts(3, 3, 3, "v1.35.2", int64(3))},
			phase: fv1.LifecycleUpgrading, progress: "1/4 machines at v1.36.3"},
		{name: "upgrading by condition", status: map[string]any{"phase": "Provisioned", "conditions": []any{available, cond("TopologyReconciled", "False", "ClusterUpgrading", "Cluster is upgrading to v1.36.3")}},
			phase: fv1.LifecycleUpgrading, progress: "upgrading to v1.36.3", message: "Cluster is upgrading to v1.36.3"},
		{name: "not available", status: map[string]any{"phase": "Provisioned", "conditions": []any{cond("Available", "False", "NotAvailable", "* WorkersAvailable: 0 available replicas")}},
			phase: fv1.LifecycleProvisioning, progress: "Cluster API does not report the cluster Available", message: "0 available replicas"},
		{name: "failed", status: map[string]any{"phase": "Failed", "conditions": []any{cond("Available", "False", "NotAvailable", "quota exceeded")}},
			phase: fv1.LifecycleFailed, message: "Cluster API: quota exceeded"},
		{name: "failed v1beta1", creating: true, status: map[string]any{"phase": "Provisioning", "deprecated": map[string]any{"v1beta1": map[string]any{"failureMessage": "no such region"}}},
			phase: fv1.LifecycleFailed, message: "Cluster API: no such region"},
		{name: "reconcile failed", creating: true, status: map[string]any{"conditions": []any{cond("TopologyReconciled", "False", "ReconcileFailed", "template not found")}},
			phase: fv1.LifecycleProvisioning, message: "cannot reconcile the topology: template not found"},
		{name: "deleting", status: map[string]any{"phase": "Deleting"}, phase: fv1.LifecycleDeleting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Assess(spec(), cluster(tc.status), nil, tc.creating)
			if st.Phase != tc.phase {
				t.Fatalf("phase %s, want %s (%+v)", st.Phase, tc.phase, st)
			}
			if tc.progress != "" && st.Progress != tc.progress {
				t.Fatalf("progress %q, want %q", st.Progress, tc.progress)
			}
			if st.Endpoint != "https://10.0.0.1:6443" {
				t.Fatalf("endpoint %q", st.Endpoint)
			}
			if tc.message != "" {
				c := meta.FindStatusCondition(st.Conditions, fv1.ConditionReady)
				if c == nil || !strings.Contains(c.Message, tc.message) || c.Reason != string(tc.phase) {
					t.Fatalf("Ready condition %+v, want a message with %q", c, tc.message)
				}
			}
		})
	}
}

func TestAssessReadsPools(t *testing.T) {
	md := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"replicas": int64(2), "readyReplicas": int64(1), "upToDateReplicas": int64(1),
		"versions": []any{map[string]any{"version": "v1.36.3", "replicas": int64(1)}, map[string]any{"version": "v1.35.2", "replicas": int64(1)}},
	}}}
	st := Assess(spec(), cluster(map[string]any{"controlPlane": counts(1, 1, 1, "v1.36.3", int64(1))}), map[string]*unstructured.Unstructured{"workers": md}, true)
	want := []fv1.NodePoolStatus{{Name: "workers", Version: "v1.35.2", Replicas: 2, Ready: 1, Updated: 1}}
	if !reflect.DeepEqual(st.NodePools, want) {
		t.Fatalf("pools %+v, want %+v", st.NodePools, want)
	}
	if len(st.ControlPlane) != 1 || st.ControlPlane[0] != (fv1.ComponentStatus{Name: "control-plane", Version: "v1.36.3", Ready: true}) {
		t.Fatalf("control plane %+v", st.ControlPlane)
	}
}
