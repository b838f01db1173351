package localplane

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"flotilla.dev/flotilla/internal/images"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/realnode"
	"flotilla.dev/flotilla/internal/sandbox"
)

// realNode is a real node the supervisor runs: its runtime, kubelet and
// kube-proxy.
type realNode struct {
	node                    *realnode.Node
	runtime, kubelet, proxy *component
	prepared, imported      bool
	// sandboxed says its runtime has the sandboxed runtime class.
	sandboxed bool
}

// hasReal says whether nodes include a real one.
func hasReal(nodes []nodesim.Node) bool {
	return slices.ContainsFunc(nodes, func(n nodesim.Node) bool { return n.Real })
}

// simulated is nodes without the real ones.
func simulated(nodes []nodesim.Node) []nodesim.Node {
	return slices.DeleteFunc(slices.Clone(nodes), func(n nodesim.Node) bool { return n.Real })
}

// prepareNetwork gives the cluster its node network if it has real nodes
// or had them (a real pool scaled to 0 keeps the network); the control
// plane then serves on the network's gateway.
func (s *supervisor) prepareNetwork() (address string, err error) {
	if !hasReal(s.desired.Nodes) && !realnode.HasNetwork(s.dir.Path) {
		return "", nil
	}
	if err := realnode.Check(); err != nil {
		return "", err
	}
	net, err := realnode.Allocate(s.dir.Path)
	if err != nil {
		return "", err
	}
	if err := net.Up(); err != nil {
		return "", fmt.Errorf("node network: %w", err)
	}
	s.net = &net
	return net.Gateway().String(), nil
}

// runRealNodes keeps the desired real nodes running and stops the others.
func (s *supervisor) runRealNodes(ctx context.Context, now time.Time) {
	want := map[string]nodesim.Node{}
	for _, n := range s.desired.Nodes {
		if n.Real {
			want[n.Name] = n
		}
	}
	for name, rn := range s.real {
		if _, ok := want[name]; !ok {
			s.removeRealNode(ctx, name, rn)
		}
	}
	if len(want) == 0 || !s.serving() {
		return
	}
	if s.net == nil {
		s.realFailure = "real nodes are given to a cluster when it is created: this one was made without, and its control plane does not serve a node network"
		return
	}
	if err := s.bootstrapRealNodes(ctx); err != nil {
		s.realFailure = "preparing the control plane for real nodes: " + err.Error()
		return
	}
	s.realFailure = ""
	s.offerSandbox(ctx)
	for name, n := range want {
		rn := s.real[name]
		if rn == nil {
			node, err := realnode.NewNode(s.desired.Name, name, n.Index, *s.net, realnode.StateDir(*s.net, n.Index))
			if err != nil {
				s.realFailure = err.Error()
				continue
			}
			rn = &realNode{node: node}
			for _, c := range []**component{&rn.runtime, &rn.kubelet, &rn.proxy} {
				*c = &component{}
			}
			rn.runtime.name, rn.kubelet.name, rn.proxy.name = name+"/containerd", name+"/kubelet", name+"/kube-proxy"
			for _, c := range []*component{rn.runtime, rn.kubelet, rn.proxy} {
				c.logFile = s.dir.Join("logs", name+"-"+c.name[len(name)+1:]+".log")
			}
			s.real[name] = rn
		}
		s.runRealNode(ctx, now, rn, n)
	}
}

// runRealNode starts the node's runtime, loads the images into it, then
// starts its kubelet and kube-proxy at the node's version.
func (s *supervisor) runRealNode(ctx context.Context, now time.Time, rn *realNode, n nodesim.Node) {
	for _, c := range []*component{rn.runtime, rn.kubelet, rn.proxy} {
		c.reap(now)
	}
	bin := s.bins.get(n.Version, rn.kubelet)
	if bin == "" {
		return
	}
	cfg := s.nodeConfig(bin)
	if cfg.Sandbox != nil && rn.prepared && !rn.sandboxed {
		// The sandbox came after the node: its runtime starts again with
		// it (running containers stay; their shims outlive the runtime).
		rn.prepared = false
		rn.runtime.retire(now, 5*time.Second)
		return
	}
	if !rn.prepared {
		if err := rn.node.Prepare(cfg); err != nil {
			rn.runtime.message = "preparing node " + n.Name + ": " + err.Error()
			return
		}
		rn.prepared, rn.sandboxed = true, cfg.Sandbox != nil
	}
	if !rn.runtime.running() {
		rn.imported = false
		cmd := rn.node.Runtime(cfg)
		rn.runtime.start(now, "", func() (*procs.Proc, error) {
			p, err := procs.Start(rn.runtime.name, cmd.Bin, cmd.Args, rn.runtime.logFile, cmd.Env...)
			if err == nil {
				if jerr := rn.node.JoinRuntimeGroup(p.PID()); jerr != nil {
					p.Stop(time.Second)
					return nil, jerr
				}
			}
			return p, err
		})
		return
	}
	// Asked until it answers once; then its process running is enough
	// (an exit clears ready), rather than a client run every tick.
	if !rn.runtime.ready {
		if rn.runtime.ready = rn.node.RuntimeReady(ctx); !rn.runtime.ready {
			rn.runtime.message = rn.runtime.name + " is starting"
			return
		}
	}
	if !rn.imported {
		if err := s.importImages(ctx, rn.node); err != nil {
			rn.kubelet.message = err.Error()
			return
		}
		rn.imported = true
	}
	for _, c := range []struct {
		comp *component
		cmd  realnode.Cmd
	}{{rn.kubelet, rn.node.Kubelet(cfg, n.Labels, n.Taints)}, {rn.proxy, rn.node.Proxy(cfg)}} {
		if c.comp.running() && c.comp.version != n.Version {
			c.comp.retire(now, 10*time.Second)
			continue
		}
		if !c.comp.running() {
			cmd := c.cmd
			c.comp.start(now, n.Version, func() (*procs.Proc, error) { return procs.Start(c.comp.name, cmd.Bin, cmd.Args, c.comp.logFile) })
		}
		c.comp.ready = c.comp.running()
	}
}

// nodeConfig is what the cluster's real nodes need of it; bin runs their
// kubelet and kube-proxy.
func (s *supervisor) nodeConfig(bin string) realnode.Config {
	return realnode.Config{CA: s.servers[0].CA, Server: s.endpoint, Pause: s.pause, Bin: bin, Sandbox: s.sandbox.get()}
}

// importImages loads the pause and workload images, and the flotilla
// binary's own (the agent's), into node's runtime, building them first if
// this machine has not: no registry needs to be reachable.
func (s *supervisor) importImages(ctx context.Context, node *realnode.Node) error {
	var archives []string
	for _, p := range []string{images.Pause, images.Hello} {
		img, err := images.Build(ctx, p)
		if err != nil {
			return err
		}
		archives = append(archives, img.Archive)
	}
	self, err := images.Self(ctx)
	if err != nil {
		return err
	}
	return node.Import(ctx, append(archives, self.Archive)...)
}

// removeRealNode stops a node that is no longer desired, removes its
// state and its Node object; the hub drained it first.
func (s *supervisor) removeRealNode(ctx context.Context, name string, rn *realNode) {
	stopRealNode(rn)
	if err := os.RemoveAll(rn.node.Dir); err != nil {
		klog.ErrorS(err, "removing real node state", "node", name)
	}
	if cs, err := kubernetes.NewForConfig(s.admin); err == nil {
		if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "removing the Node of a removed real node", "node", name)
		}
	}
	delete(s.real, name)
}

// stopRealNode stops the node's kubelet, then its pods through the
// runtime, then the runtime, then whatever they leave running.
func stopRealNode(rn *realNode) {
	procs.StopAll(3*time.Second, procsOf(rn.kubelet, rn.proxy)...)
	if rn.runtime.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := rn.node.RemovePods(ctx); err != nil {
			klog.ErrorS(err, "removing the pods of real node", "node", rn.node.Name)
		}
		cancel()
	}
	procs.StopAll(3*time.Second, procsOf(rn.runtime)...)
	if err := rn.node.Stop(); err != nil {
		klog.ErrorS(err, "stopping real node", "node", rn.node.Name)
	}
}

// bootstrapRealNodes lets the apiserver reach kubelets (logs, exec,
// port-forward) and points the kubernetes Service at the control plane's
// address on the node network, once.
func (s *supervisor) bootstrapRealNodes(ctx context.Context) error {
	if s.realReady {
		return nil
	}
	cs, err := kubernetes.NewForConfig(s.admin)
	if err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flotilla:kube-apiserver-kubelet-client"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: kubeletClientUser}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := s.publishEndpoint(ctx, cs); err != nil {
		return err
	}
	s.realReady = true
	return nil
}

// offerSandbox creates the sandboxed RuntimeClass once the nodes have the
// runtime behind it.
func (s *supervisor) offerSandbox(ctx context.Context) {
	if s.sandboxOffered || s.sandbox.get() == nil {
		return
	}
	cs, err := kubernetes.NewForConfig(s.admin)
	if err != nil {
		return
	}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: sandbox.RuntimeClass}, Handler: sandbox.Handler}
	if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		klog.ErrorS(err, "creating the sandboxed runtime class")
		return
	}
	s.sandboxOffered = true
}

// kubeletClientUser is who the apiserver is to kubelets.
const kubeletClientUser = "kube-apiserver-kubelet-client"

// publishEndpoint writes the kubernetes Service's endpoints (the apiserver
// keeps none of its own here: its members serve on different ports behind
// one address).
func (s *supervisor) publishEndpoint(ctx context.Context, cs kubernetes.Interface) error {
	port := int32(s.endpointPort)
	addr := s.net.Gateway().String()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes",
			discoveryv1.LabelManagedBy:   "localplane.flotilla.dev",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: &port, Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	_, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		old, gerr := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		slice.ResourceVersion = old.ResourceVersion
		_, err = cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Update(ctx, slice, metav1.UpdateOptions{})
	}
	return err
}

// realStatus is the status of the real nodes' components, by node name.
func (s *supervisor) realStatus() []Component {
	var out []Component
	if s.realFailure != "" {
		out = append(out, Component{Name: "real-nodes", Failed: true, Message: s.realFailure})
	}
	if len(s.real) > 0 {
		sb := Component{Name: "sandbox", Ready: s.sandbox.get() != nil}
		sb.Message = s.sandbox.message()
		out = append(out, sb)
	}
	names := make([]string, 0, len(s.real))
	for n := range s.real {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		rn := s.real[n]
		for _, c := range []*component{rn.runtime, rn.kubelet, rn.proxy} {
			out = append(out, c.status())
		}
	}
	return out
}
