package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/drain"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/registration"
)

// CordonedAnnotation marks a node the provider cordoned, with why (upgrade
// or scale-down): it uncordons only those.
const CordonedAnnotation = "flotilla.dev/cordoned-for"

// local takes the next step for a cluster of the local provider and says
// where the cluster stands.
func (r *Reconciler) local(ctx context.Context, c *fv1.Cluster) (st fv1.LifecycleStatus, err error) {
	spec := c.Spec.Lifecycle
	d, ok, err := r.Local.Desired(c.Name)
	if err != nil {
		return fv1.LifecycleStatus{}, err
	}
	if !ok {
		d = initial(c.Name, spec)
		d.AgentArgs = r.AgentArgs
		if err := r.Local.Apply(c.Name, d); err != nil {
			return fv1.LifecycleStatus{}, err
		}
		return fv1.LifecycleStatus{Phase: fv1.LifecycleProvisioning, Progress: "starting the control plane"}, nil
	}
	// Started again if it is not running (a hub restart finds it running).
	if err := r.Local.Apply(c.Name, d); err != nil {
		return fv1.LifecycleStatus{}, err
	}
	sup, ok, err := r.Local.Status(c.Name)
	if err != nil || !ok {
		return fv1.LifecycleStatus{Phase: phaseOf(c, fv1.LifecycleProvisioning), Progress: "starting the supervisor"}, err
	}
	st = fv1.LifecycleStatus{Endpoint: sup.Endpoint}
	for _, comp := range sup.Components {
		if comp.Name == "agent" {
			continue
		}
		st.ControlPlane = append(st.ControlPlane, fv1.ComponentStatus{Name: comp.Name, Version: comp.Version, Ready: comp.Ready})
		if comp.Failed {
			return failed(st, comp.Message), nil
		}
	}
	if msg, ready := controlPlaneReady(sup); !ready {
		st.Phase, st.Progress = phaseOf(c, fv1.LifecycleProvisioning), msg
		return st, nil
	}

	// The control plane first: one member at a time (the last one changed
	// serves at its version before the next is), then the controllers.
	for i, v := range d.ControlPlane {
		if comp := component(sup, "kube-apiserver-"+strconv.Itoa(i)); comp.Version != v || !comp.Ready {
			st.Phase, st.Progress = phaseOf(c, fv1.LifecycleUpgrading), "waiting for "+comp.Name+" to serve at "+v
			return st, nil
		}
	}
	if i := nextMember(d, spec.Version); i >= 0 {
		d.ControlPlane[i] = spec.Version
		st.Phase, st.Progress = fv1.LifecycleUpgrading, progress(i, len(d.ControlPlane), "control-plane members upgraded")
		return st, r.Local.Apply(c.Name, d)
	}
	for _, comp := range sup.Components {
		if strings.HasPrefix(comp.Name, "kube-") && comp.Version != spec.Version {
			st.Phase, st.Progress = fv1.LifecycleUpgrading, "waiting for "+comp.Name+" to run "+spec.Version
			return st, nil
		}
	}

	kubeconfig, err := r.Local.Kubeconfig(c.Name)
	if err != nil {
		return st, err
	}
	if err := r.publish(ctx, c.Name, kubeconfig); err != nil {
		return st, err
	}
	cs, err := r.member(c.Name)
	if err != nil {
		return st, err
	}
	reported, err := nodeReports(ctx, cs)
	if err != nil {
		return st, err
	}
	defer func() { st.NodePools = pools(c.Name, spec, d, reported) }()

	// Scale up: new nodes at the spec's version.
	if grown, added := grow(c.Name, spec, d.Nodes); added > 0 {
		d.Nodes = grown
		st.Phase, st.Progress = phaseOf(c, fv1.LifecycleScaling), fmt.Sprintf("adding %d nodes", added)
		return st, r.Local.Apply(c.Name, d)
	}
	// Scale down: cordon every node to go first, so that their pods do not
	// move from one to another, then drain them and remove the drained.
	if gone := surplus(c.Name, spec, d.Nodes); len(gone) > 0 {
		st.Phase = fv1.LifecycleScaling
		var drained []string
		var blocked string
		for _, n := range gone {
			if err := cordon(ctx, cs, n, "scale-down", reported[n]); err != nil {
				return st, err
			}
		}
		for _, n := range gone {
			res, err := drain.Evict(ctx, cs, n)
			if err != nil {
				return st, err
			}
			if res.Done() {
				drained = append(drained, n)
			} else if blocked == "" {
				blocked = res.BlockedBy
			}
		}
		st.Progress = progress(len(drained), len(gone), "nodes drained for removal")
		if blocked != "" {
			return waiting(st, "scale-down waits: "+blocked), nil
		}
		if len(drained) > 0 {
			d.Nodes = without(d.Nodes, drained)
			return st, r.Local.Apply(c.Name, d)
		}
		return st, nil
	}
	// Then the nodes, one at a time: the last one upgraded runs its new
	// version and takes pods again before the next is cordoned.
	total := len(d.Nodes)
	for _, n := range d.Nodes {
		rep := reported[n.Name]
		if n.Version != spec.Version {
			continue
		}
		if rep.version != n.Version || !rep.ready {
			st.Phase, st.Progress = phaseOf(c, fv1.LifecycleProvisioning), progress(upgraded(d, reported, spec.Version), total, "nodes Ready at "+spec.Version)
			return st, nil
		}
		if rep.cordonedByUs {
			if err := uncordon(ctx, cs, n.Name); err != nil {
				return st, err
			}
		}
	}
	if i := nextNode(d, spec.Version); i >= 0 {
		n := d.Nodes[i].Name
		st.Phase, st.Progress = fv1.LifecycleUpgrading, progress(upgraded(d, reported, spec.Version), total, "nodes upgraded")
		if err := cordon(ctx, cs, n, "upgrade", reported[n]); err != nil {
			return st, err
		}
		res, err := drain.Evict(ctx, cs, n)
		if err != nil {
			return st, err
		}
		if res.BlockedBy != "" {
			return waiting(st, "upgrade of node "+n+" waits: "+res.BlockedBy), nil
		}
		if !res.Done() {
			st.Progress += fmt.Sprintf("; draining %s (%d pods left)", n, res.Remaining)
			return st, nil
		}
		d.Nodes[i].Version = spec.Version
		return st, r.Local.Apply(c.Name, d)
	}

	// Then the agent, once: the cluster attaches itself.
	if d.AgentBootstrap == "" {
		path, err := r.bootstrap(ctx, c)
		if err != nil {
			return st, err
		}
		d.AgentBootstrap = path
		st.Phase, st.Progress = phaseOf(c, fv1.LifecycleProvisioning), "starting the agent"
		return st, r.Local.Apply(c.Name, d)
	}
	st.Phase = fv1.LifecycleReady
	return st, nil
}

// phaseOf is want for a cluster that has never been Ready, and the phase
// its spec change calls for otherwise.
func phaseOf(c *fv1.Cluster, want fv1.LifecyclePhase) fv1.LifecyclePhase {
	last := c.Status.Lifecycle
	if last == nil || want != fv1.LifecycleProvisioning {
		return want
	}
	switch last.Phase {
	case fv1.LifecycleUpgrading, fv1.LifecycleScaling:
		return last.Phase
	case fv1.LifecycleReady, fv1.LifecycleFailed:
		if last.ObservedGeneration != c.Generation {
			return fv1.LifecycleUpgrading
		}
	}
	return want
}

// component is the status of the component named name.
func component(s localplane.Status, name string) localplane.Component {
	for _, c := range s.Components {
		if c.Name == name {
			return c
		}
	}
	return localplane.Component{Name: name}
}

// controlPlaneReady says whether every etcd and apiserver member serves,
// and what it waits for if not.
func controlPlaneReady(s localplane.Status) (string, bool) {
	for _, comp := range s.Components {
		if comp.Name == "agent" {
			continue
		}
		if !comp.Ready {
			msg := comp.Message
			if msg == "" {
				msg = comp.Name + " is starting"
			}
			return msg, false
		}
	}
	return "", true
}

func failed(st fv1.LifecycleStatus, why string) fv1.LifecycleStatus {
	st.Phase, st.Progress = fv1.LifecycleFailed, "a component cannot start"
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(fv1.LifecycleFailed), Message: truncate(why)})
	return st
}

func waiting(st fv1.LifecycleStatus, why string) fv1.LifecycleStatus {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(st.Phase), Message: truncate(why)})
	return st
}

// nodeReports reads the cluster's simulated nodes.
func nodeReports(ctx context.Context, cs kubernetes.Interface) (map[string]nodeReport, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: nodesim.SimulatedLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	out := map[string]nodeReport{}
	for _, n := range list.Items {
		r := nodeReport{version: n.Status.NodeInfo.KubeletVersion, unschedulable: n.Spec.Unschedulable}
		_, r.cordonedByUs = n.Annotations[CordonedAnnotation]
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				r.ready = cond.Status == corev1.ConditionTrue
			}
		}
		out[n.Name] = r
	}
	return out, nil
}

// cordon cordons node for why, marking it as cordoned by the provider.
func cordon(ctx context.Context, cs kubernetes.Interface, node, why string, rep nodeReport) error {
	if rep.unschedulable {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"unschedulable":true}}`, CordonedAnnotation, why)
	_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("cordoning node %s: %w", node, err)
	}
	return nil
}

// uncordon undoes cordon.
func uncordon(ctx context.Context, cs kubernetes.Interface, node string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"unschedulable":false}}`, CordonedAnnotation)
	_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("uncordoning node %s: %w", node, err)
	}
	return nil
}

// bootstrap issues the cluster's agent a bootstrap credential and writes
// its kubeconfig into the cluster's directory.
func (r *Reconciler) bootstrap(ctx context.Context, c *fv1.Cluster) (string, error) {
	tok, err := registration.IssueToken(ctx, r.Client, c.Name, time.Hour)
	if err != nil {
		return "", err
	}
	ca := r.Hub.CAData
	if len(ca) == 0 && r.Hub.CAFile != "" {
		if ca, err = os.ReadFile(r.Hub.CAFile); err != nil {
			return "", err
		}
	}
	boot, err := registration.BootstrapKubeconfig(r.Hub.Host, ca, c.Name, string(c.UID), tok)
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.Local.Dir(c.Name), "agent-bootstrap.kubeconfig")
	return path, os.WriteFile(path, boot, 0o600)
}
