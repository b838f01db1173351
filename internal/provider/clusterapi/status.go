package clusterapi

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Cluster API's v1beta2 condition types and reasons that the status reads.
const (
	condAvailable          = "Available"
	condTopologyReconciled = "TopologyReconciled"
	condInfrastructure     = "InfrastructureReady"
	condCPInitialized      = "ControlPlaneInitialized"
	condCPAvailable        = "ControlPlaneAvailable"
	condWorkersAvailable   = "WorkersAvailable"
	reasonReconcileFailed  = "ReconcileFailed"
)

// upgradeReasons are the TopologyReconciled reasons of a version rollout.
var upgradeReasons = map[string]bool{
	"ClusterUpgrading":                  true,
	"ControlPlaneUpgradePending":        true,
	"MachineDeploymentsUpgradePending":  true,
	"MachineDeploymentsUpgradeDeferred": true,
	"MachinePoolsUpgradePending":        true,
	"MachinePoolsUpgradeDeferred":       true,
}

// replicas are the counts of a Cluster API Cluster's status.controlPlane
// or status.workers, and the versions its machines run.
type replicas struct {
	known                                   bool
	desired, current, ready, available, upd int64
	versions                                map[string]int64
}

func readReplicas(obj map[string]any, fields ...string) replicas {
	m, ok, _ := unstructured.NestedMap(obj, fields...)
	if !ok {
		return replicas{}
	}
	n := func(f string) int64 { v, _, _ := unstructured.NestedInt64(m, f); return v }
	r := replicas{known: true, desired: n("desiredReplicas"), current: n("replicas"), ready: n("readyReplicas"), available: n("availableReplicas"), upd: n("upToDateReplicas")}
	vs, _, _ := unstructured.NestedSlice(m, "versions")
	for _, v := range vs {
		vm, ok := v.(map[string]any)
		if !ok {
			continue
		}
		name, _ := vm["version"].(string)
		count, _ := vm["replicas"].(int64)
		if name != "" {
			if r.versions == nil {
				r.versions = map[string]int64{}
			}
			r.versions[name] += count
		}
	}
	return r
}

// oldest is the oldest version r's machines run; "" when unknown.
func (r replicas) oldest() string {
	var out string
	var min *version.Version
	for v := range r.versions {
		pv, err := version.ParseGeneric(v)
		if err != nil {
			continue
		}
		if min == nil || pv.LessThan(min) {
			min, out = pv, v
		}
	}
	return out
}

// at counts r's machines at v.
func (r replicas) at(v string) int64 { return r.versions[v] }

func (r replicas) total() int64 {
	var n int64
	for _, c := range r.versions {
		n += c
	}
	return n
}

// Assess says where the cluster of a Cluster API Cluster stands against
// spec: Failed when Cluster API says so, Deleting, then while creating
// Provisioning until Available is True; once created, Upgrading while
// machines run another version than the spec's (or Cluster API rolls one
// out), Scaling while the machines are not as many as the spec's or not
// all ready, Provisioning while Cluster API does not report the cluster
// Available, and Ready otherwise. pools are its MachineDeployments by
// topology name, if any.
func Assess(spec *fv1.ClusterLifecycle, cl *unstructured.Unstructured, pools map[string]*unstructured.Unstructured, creating bool) fv1.LifecycleStatus {
	st := fv1.LifecycleStatus{Endpoint: endpoint(cl)}
	obj := cl.Object
	cp := readReplicas(obj, "status", "controlPlane")
	workers := readReplicas(obj, "status", "workers")
	conds := conditions(obj)
	if cp.known {
		v := cp.oldest()
		st.ControlPlane = []fv1.ComponentStatus{{Name: "control-plane", Version: v, Ready: cp.desired > 0 && cp.ready >= cp.desired}}
	}
	for _, np := range spec.NodePools {
		md := pools[np.Name]
		if md == nil {
			continue
		}
		r := readReplicas(md.Object, "status")
		st.NodePools = append(st.NodePools, fv1.NodePoolStatus{Name: np.Name, Version: r.oldest(), Replicas: int32(r.current), Ready: int32(r.ready), Updated: int32(r.upd)})
	}

	phase, _, _ := unstructured.NestedString(obj, "status", "phase")
	failureMessage, _, _ := unstructured.NestedString(obj, "status", "deprecated", "v1beta1", "failureMessage")
	available := meta.FindStatusCondition(conds, condAvailable)
	topo := meta.FindStatusCondition(conds, condTopologyReconciled)
	switch {
	case phase == "Failed" || failureMessage != "":
		msg := failureMessage
		for _, c := range []*metav1.Condition{available, topo} {
			if msg == "" && c != nil && c.Status != metav1.ConditionTrue && c.Message != "" {
				msg = c.Message
			}
		}
		if msg == "" {
			msg = "Cluster API reports the cluster Failed, without a message"
		}
		return failed(st, "Cluster API: "+msg)
	case phase == "Deleting" || cl.GetDeletionTimestamp() != nil:
		st.Phase, st.Progress = fv1.LifecycleDeleting, "Cluster API is deleting the cluster"
		return st
	}

	var desired int64 = int64(max(spec.ControlPlane.Replicas, 1))
	for _, np := range spec.NodePools {
		desired += int64(np.Replicas)
	}
	counted := cp.known || workers.known
	ready := cp.ready + workers.ready
	machines := fmt.Sprintf("%d/%d machines ready", ready, desired)
	isAvailable := available != nil && available.Status == metav1.ConditionTrue
	// What Cluster API says it waits for, for the Ready condition.
	why := ""
	switch {
	case topo != nil && topo.Status == metav1.ConditionFalse && topo.Message != "":
		why = topo.Message
	case available != nil && available.Status != metav1.ConditionTrue && available.Message != "":
		why = available.Message
	}
	if topo != nil && topo.Reason == reasonReconcileFailed {
		why = "Cluster API cannot reconcile the topology: " + topo.Message
	}

	if creating {
		if isAvailable {
			st.Phase = fv1.LifecycleReady
			if counted {
				st.Progress = machines
			}
			return st
		}
		st.Phase = fv1.LifecycleProvisioning
		switch {
		case counted:
			st.Progress = machines
		default:
			st.Progress = creationStep(conds, phase)
		}
		return waitingFor(st, why)
	}

	// Upgrading: machines at another version, or Cluster API rolling one out.
	all := replicas{versions: map[string]int64{}}
	for _, r := range []replicas{cp, workers} {
		for v, n := range r.versions {
			all.versions[v] += n
		}
	}
	stale := all.total() > all.at(spec.Version)
	if stale || (topo != nil && topo.Status == metav1.ConditionFalse && upgradeReasons[topo.Reason]) {
		st.Phase = fv1.LifecycleUpgrading
		if all.total() > 0 {
			st.Progress = fmt.Sprintf("%d/%d machines at %s", all.at(spec.Version), all.total(), spec.Version)
		} else {
			st.Progress = "upgrading to " + spec.Version
		}
		return waitingFor(st, why)
	}
	if counted && (cp.current+workers.current != desired || ready != desired) {
		st.Phase, st.Progress = fv1.LifecycleScaling, machines
		return waitingFor(st, why)
	}
	if !isAvailable {
		st.Phase = fv1.LifecycleProvisioning
		st.Progress = "Cluster API does not report the cluster Available"
		if counted {
			st.Progress += "; " + machines
		}
		return waitingFor(st, why)
	}
	st.Phase = fv1.LifecycleReady
	if counted {
		st.Progress = machines
	}
	return st
}

// creationStep says what the creation of a cluster whose status has no
// machine counts waits for.
func creationStep(conds []metav1.Condition, phase string) string {
	for _, s := range []struct{ cond, what string }{
		{condInfrastructure, "waiting for the infrastructure"},
		{condCPInitialized, "waiting for the control plane to initialize"},
		{condCPAvailable, "waiting for the control plane"},
		{condWorkersAvailable, "waiting for the workers"},
	} {
		if c := meta.FindStatusCondition(conds, s.cond); c != nil && c.Status != metav1.ConditionTrue {
			return s.what
		}
	}
	if phase == "" {
		return "waiting for Cluster API to take the cluster"
	}
	return "Cluster API: " + strings.ToLower(phase)
}

// conditions are a Cluster API object's status.conditions (v1beta2).
func conditions(obj map[string]any) []metav1.Condition {
	items, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	var out []metav1.Condition
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, metav1.Condition{Type: s("type"), Status: metav1.ConditionStatus(s("status")), Reason: s("reason"), Message: s("message")})
	}
	return out
}

// endpoint is the cluster's apiserver URL from spec.controlPlaneEndpoint.
func endpoint(cl *unstructured.Unstructured) string {
	host, _, _ := unstructured.NestedString(cl.Object, "spec", "controlPlaneEndpoint", "host")
	if host == "" {
		return ""
	}
	port, _, _ := unstructured.NestedInt64(cl.Object, "spec", "controlPlaneEndpoint", "port")
	if port == 0 {
		port = 6443
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("https://%s:%d", host, port)
}

func failed(st fv1.LifecycleStatus, why string) fv1.LifecycleStatus {
	st.Phase, st.Progress = fv1.LifecycleFailed, "Cluster API reports a failure"
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(fv1.LifecycleFailed), Message: truncate(why)})
	return st
}

// waiting sets the Ready condition to say what st waits for.
func waiting(st fv1.LifecycleStatus, why string) fv1.LifecycleStatus {
	st.Conditions = nil
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(st.Phase), Message: truncate(why)})
	return st
}

// waitingFor is waiting when Cluster API says why, st as it is otherwise.
func waitingFor(st fv1.LifecycleStatus, why string) fv1.LifecycleStatus {
	if why == "" {
		return st
	}
	return waiting(st, st.Progress+": "+why)
}

func truncate(s string) string {
	if len(s) > 1000 {
		return s[:1000] + "…"
	}
	return s
}
