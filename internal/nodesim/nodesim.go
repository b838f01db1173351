// Package nodesim plays the kubelet for simulated nodes of a real control
// plane: it registers each node Ready with its capacity, labels, taints and
// kubelet version, starts the pods the scheduler binds to it and finishes
// their graceful deletion. Containers do not run. The set of nodes can
// change while it runs: a local cluster's node pools grow, shrink and are
// upgraded through it.
package nodesim

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SimulatedLabel marks the nodes a local cluster simulates.
const SimulatedLabel = "flotilla.dev/simulated"

// Node is one simulated node.
type Node struct {
	Name string `json:"name"`
	// Index numbers the node's addresses (127.0.1.INDEX, 10.244.INDEX.0/24):
	// unique in the cluster, 1 to 250.
	Index   int               `json:"index"`
	Version string            `json:"version"`
	CPU     resource.Quantity `json:"cpu"`
	Memory  resource.Quantity `json:"memory"`
	Labels  map[string]string `json:"labels,omitempty"`
	Taints  []corev1.Taint    `json:"taints,omitempty"`
	// Real nodes run a kubelet and a container runtime (package realnode);
	// the simulator leaves them alone.
	Real bool `json:"real,omitempty"`
}

// Sim simulates a changing set of nodes.
type Sim struct {
	cs    kubernetes.Interface
	queue workqueue.TypedRateLimitingInterface[string]
	pods  cache.Indexer

	mu    sync.Mutex
	nodes map[string]Node
}

// New returns a Sim of no nodes on the cluster cs reaches.
func New(cs kubernetes.Interface) *Sim {
	return &Sim{cs: cs, nodes: map[string]Node{}}
}

// Set makes the cluster's simulated nodes those of want: it registers the
// new ones (or adopts them after a restart) Ready, refreshes the status of
// the others (their kubelet version, say), and deletes simulated nodes
// that want does not list.
func (s *Sim) Set(ctx context.Context, want []Node) error {
	next := map[string]Node{}
	for _, n := range want {
		next[n.Name] = n
	}
	s.mu.Lock()
	s.nodes = next
	s.mu.Unlock()
	for _, n := range want {
		if err := s.register(ctx, n); err != nil {
			return err
		}
	}
	list, err := s.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: SimulatedLabel + "=true"})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range list.Items {
		if _, ok := next[n.Name]; ok {
			continue
		}
		if err := s.cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); client404(err) != nil {
			return fmt.Errorf("removing node %s: %w", n.Name, err)
		}
	}
	return nil
}

func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// register creates n unless it exists, and writes its status.
func (s *Sim) register(ctx context.Context, n Node) error {
	node, err := s.cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = s.cs.CoreV1().Nodes().Create(ctx, newNode(n), metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.Name, err)
	}
	return s.heartbeat(ctx, node, n)
}

func newNode(n Node) *corev1.Node {
	labels := maps.Clone(n.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[corev1.LabelHostname] = n.Name
	labels[corev1.LabelOSStable] = "linux"
	labels[corev1.LabelArchStable] = "amd64"
	labels[SimulatedLabel] = "true"
	cidr := fmt.Sprintf("10.244.%d.0/24", n.Index)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels},
		Spec:       corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}, Taints: n.Taints},
	}
}

// heartbeat writes the node's status: capacity, addresses, versions and Ready.
func (s *Sim) heartbeat(ctx context.Context, node *corev1.Node, n Node) error {
	now := metav1.Now()
	res := corev1.ResourceList{
		corev1.ResourceCPU:    n.CPU,
		corev1.ResourceMemory: n.Memory,
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node = node.DeepCopy()
	node.Status.Capacity, node.Status.Allocatable = res, res
	node.Status.Phase = corev1.NodeRunning
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("127.0.1.%d", n.Index)},
		{Type: corev1.NodeHostName, Address: node.Name},
	}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion: n.Version, OperatingSystem: "linux", Architecture: "amd64",
		ContainerRuntimeVersion: "flotilla-sim://1", OSImage: "simulated", KernelVersion: "simulated",
	}
	cond := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	node.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
	}
	_, err := s.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status of node %s: %w", node.Name, err)
	}
	return nil
}

// node is the simulated node named name, if it is one.
func (s *Sim) node(name string) (Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	return n, ok
}

// Run starts bound pods and completes deletions until ctx ends.
func (s *Sim) Run(ctx context.Context) {
	s.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	factory := informers.NewSharedInformerFactoryWithOptions(s.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	s.pods = inf.GetIndexer()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			s.queue.Add(key)
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	for range 4 {
		go func() {
			for s.next(ctx) {
			}
		}()
	}
	// Refresh node heartbeats so the nodes look alive to anyone reading them.
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.mu.Lock()
				nodes := maps.Clone(s.nodes)
				s.mu.Unlock()
				for name, n := range nodes {
					if node, err := s.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
						_ = s.heartbeat(ctx, node, n)
					}
				}
			}
		}
	}()
}

func (s *Sim) next(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	if err := s.syncPod(ctx, key); err != nil {
		klog.V(2).InfoS("simulated kubelet: retrying pod", "pod", key, "err", err)
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	return true
}

func (s *Sim) syncPod(ctx context.Context, key string) error {
	obj, exists, err := s.pods.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	n, ours := s.node(pod.Spec.NodeName)
	if !ours {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		// The kubelet confirms graceful deletion once containers stop; ours stop at once.
		zero := int64(0)
		err := s.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "" {
		return nil
	}
	_, err = s.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, runningStatus(pod, n.Index), metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// runningStatus is the status a kubelet would report once every container of pod runs.
func runningStatus(pod *corev1.Pod, nodeIndex int) *corev1.Pod {
	now := metav1.Now()
	h := fnv.New32a()
	h.Write([]byte(pod.UID))
	ip := fmt.Sprintf("10.244.%d.%d", nodeIndex, 2+h.Sum32()%250)
	hostIP := fmt.Sprintf("127.0.1.%d", nodeIndex)
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP, p.Status.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "sim://" + c.Image, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	p.Status.ContainerStatuses = nil
	started := true
	for _, c := range pod.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "sim://" + c.Image, Ready: true, Started: &started,
			ContainerID: "sim://" + string(pod.UID) + "/" + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return p
}
