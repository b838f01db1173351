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
	"flotilla.dev/flotilla/internal/registration"
)

// CordonedAnnotation marks a node the provider cordoned, with why (upgrade
// or scale-down): it uncordons only those.
const CordonedAnnotation = "flotilla.dev/cordoned-for"

// local takes the next step for a cluster of the local provider and says
// where the cluster stands: the first of its steps that has something to
// do (or to wait for) ends the pass.
func (r *Reconciler) local(ctx context.Context, c *fv1.Cluster) (fv1.LifecycleStatus, error) {
	p := &pass{r: r, c: c, spec: c.Spec.Lifecycle}
	for _, step := range []func(context.Context) (bool, error){
		p.start,
		p.upgradeControlPlane,
		p.connect,
		p.scaleUp,
		p.scaleDown,
		p.upgradeNodes,
		p.attach,
	} {
		if ended, err := step(ctx); ended || err != nil {
			return p.status(), err
		}
	}
	p.st.Phase = fv1.LifecycleReady
	return p.status(), nil
}

// pass is one look at a local cluster: what it should be, and what runs.
type pass struct {
	r        *Reconciler
	c        *fv1.Cluster
	spec     *fv1.ClusterLifecycle
	d        localplane.Desired
	sup      localplane.Status
	cs       kubernetes.Interface
	reported map[string]nodeReport // nil until connect
	st       fv1.LifecycleStatus
}

func (p *pass) status() fv1.LifecycleStatus {
	if p.reported != nil {
		p.st.NodePools = pools(p.c.Name, p.spec, p.d, p.reported)
	}
	return p.st
}

// apply hands the supervisor the changed desired state.
func (p *pass) apply() error { return p.r.Local.Apply(p.c.Name, p.d) }

// set ends the pass in phase, saying progress.
func (p *pass) set(phase fv1.LifecyclePhase, progress string) (bool, error) {
	p.st.Phase, p.st.Progress = phase, progress
	return true, nil
}

// start writes a new cluster's desired state, keeps the supervisor
// running (a restarted hub finds it running), and waits for the control
// plane to serve; a component that cannot start fails the cluster.
func (p *pass) start(context.Context) (bool, error) {
	d, ok, err := p.r.Local.Desired(p.c.Name)
	if err != nil {
		return true, err
	}
	if !ok {
		p.d = initial(p.c.Name, p.spec)
		p.d.AgentArgs = p.r.AgentArgs
		if err := p.apply(); err != nil {
			return true, err
		}
		return p.set(fv1.LifecycleProvisioning, "starting the control plane")
	}
	p.d = d
	// Started again if it is not running; its desired state is as written.
	if err := p.r.Local.EnsureRunning(p.c.Name); err != nil {
		return true, err
	}
	sup, ok, err := p.r.Local.Status(p.c.Name)
	if err != nil || !ok {
		p.st.Phase, p.st.Progress = phaseOf(p.c, fv1.LifecycleProvisioning), "starting the supervisor"
		return true, err
	}
	p.sup = sup
	p.st.Endpoint = sup.Endpoint
	for _, comp := range sup.Components {
		if comp.Name == "agent" {
			continue
		}
		p.st.ControlPlane = append(p.st.ControlPlane, fv1.ComponentStatus{Name: comp.Name, Version: comp.Version, Ready: comp.Ready})
		if comp.Failed {
			p.st = failed(p.st, comp.Message)
			return true, nil
		}
	}
	for _, comp := range sup.RealNodes {
		if comp.Failed {
			p.st = failed(p.st, comp.Message)
			return true, nil
		}
	}
	if msg, ready := controlPlaneReady(sup); !ready {
		return p.set(phaseOf(p.c, fv1.LifecycleProvisioning), msg)
	}
	return false, nil
}

// upgradeControlPlane upgrades one member at a time (the last one changed
// serves at its version before the next is), then the controllers.
func (p *pass) upgradeControlPlane(context.Context) (bool, error) {
	for i, v := range p.d.ControlPlane {
		if comp := component(p.sup, "kube-apiserver-"+strconv.Itoa(i)); comp.Version != v || !comp.Ready {
			return p.set(phaseOf(p.c, fv1.LifecycleUpgrading), "waiting for "+comp.Name+" to serve at "+v)
		}
	}
	if i := nextMember(p.d, p.spec.Version); i >= 0 {
		p.d.ControlPlane[i] = p.spec.Version
		p.set(fv1.LifecycleUpgrading, progress(i, len(p.d.ControlPlane), "control-plane members upgraded"))
		return true, p.apply()
	}
	for _, comp := range p.sup.Components {
		if strings.HasPrefix(comp.Name, "kube-") && comp.Version != p.spec.Version {
			return p.set(fv1.LifecycleUpgrading, "waiting for "+comp.Name+" to run "+p.spec.Version)
		}
	}
	return false, nil
}

// connect publishes the cluster's kubeconfig and reads its nodes.
func (p *pass) connect(ctx context.Context) (bool, error) {
	kubeconfig, err := p.r.Local.Kubeconfig(p.c.Name)
	if err != nil {
		return true, err
	}
	if err := p.r.publish(ctx, p.c.Name, kubeconfig); err != nil {
		return true, err
	}
	if p.cs, err = p.r.member(p.c.Name); err != nil {
		return true, err
	}
	p.reported, err = nodeReports(ctx, p.cs)
	return err != nil, err
}

// scaleUp adds the nodes pools lack, at the spec's version.
func (p *pass) scaleUp(context.Context) (bool, error) {
	grown, added := grow(p.c.Name, p.spec, p.d.Nodes)
	if added == 0 {
		return false, nil
	}
	p.d.Nodes = grown
	p.set(phaseOf(p.c, fv1.LifecycleScaling), fmt.Sprintf("adding %d nodes", added))
	return true, p.apply()
}

// scaleDown cordons every node to go first, so that their pods do not
// move from one to another, then drains them and removes the drained.
func (p *pass) scaleDown(ctx context.Context) (bool, error) {
	gone := surplus(p.c.Name, p.spec, p.d.Nodes)
	if len(gone) == 0 {
		return false, nil
	}
	p.st.Phase = fv1.LifecycleScaling
	for _, n := range gone {
		if err := cordon(ctx, p.cs, n, "scale-down", p.reported[n]); err != nil {
			return true, err
		}
	}
	var drained []string
	var blocked string
	for _, n := range gone {
		res, err := drain.Evict(ctx, p.cs, n)
		if err != nil {
			return true, err
		}
		if res.Done() {
			drained = append(drained, n)
		} else if blocked == "" {
			blocked = res.BlockedBy
		}
	}
	p.st.Progress = progress(len(drained), len(gone), "nodes drained for removal")
	if blocked != "" {
		p.st = waiting(p.st, "scale-down waits: "+blocked)
		return true, nil
	}
	if len(drained) > 0 {
		p.d.Nodes = without(p.d.Nodes, drained)
		return true, p.apply()
	}
	return true, nil
}

// upgradeNodes upgrades the nodes one at a time: cordon, drain, new
// version; the last one upgraded runs its new version and takes pods again
// (uncordoned) before the next is cordoned.
func (p *pass) upgradeNodes(ctx context.Context) (bool, error) {
	total, version := len(p.d.Nodes), p.spec.Version
	for _, n := range p.d.Nodes {
		rep := p.reported[n.Name]
		if n.Version != version {
			continue
		}
		if rep.version != n.Version || !rep.ready {
			return p.set(phaseOf(p.c, fv1.LifecycleProvisioning), progress(upgraded(p.d, p.reported, version), total, "nodes Ready at "+version))
		}
		if rep.cordonedByUs {
			if err := uncordon(ctx, p.cs, n.Name); err != nil {
				return true, err
			}
		}
	}
	i := nextNode(p.d, version)
	if i < 0 {
		return false, nil
	}
	n := p.d.Nodes[i].Name
	p.set(fv1.LifecycleUpgrading, progress(upgraded(p.d, p.reported, version), total, "nodes upgraded"))
	if err := cordon(ctx, p.cs, n, "upgrade", p.reported[n]); err != nil {
		return true, err
	}
	res, err := drain.Evict(ctx, p.cs, n)
	switch {
	case err != nil:
		return true, err
	case res.BlockedBy != "":
		p.st = waiting(p.st, "upgrade of node "+n+" waits: "+res.BlockedBy)
		return true, nil
	case !res.Done():
		p.st.Progress += fmt.Sprintf("; draining %s (%d pods left)", n, res.Remaining)
		return true, nil
	}
	p.d.Nodes[i].Version = version
	return true, p.apply()
}

// attach starts the agent, once: the cluster attaches itself.
func (p *pass) attach(ctx context.Context) (bool, error) {
	if p.d.AgentBootstrap != "" {
		return false, nil
	}
	path, err := p.r.bootstrap(ctx, p.c)
	if err != nil {
		return true, err
	}
	p.d.AgentBootstrap = path
	p.set(phaseOf(p.c, fv1.LifecycleProvisioning), "starting the agent")
	return true, p.apply()
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

// nodeReports reads the cluster's nodes of its pools, simulated and real.
func nodeReports(ctx context.Context, cs kubernetes.Interface) (map[string]nodeReport, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: PoolLabel})
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
