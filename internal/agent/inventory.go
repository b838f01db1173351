package agent

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// memberView is what the agent already holds of its cluster: counting from
// its informers spares the cluster three lists per heartbeat, and the
// version is asked for every versionEvery. An informer that is nil or not
// yet synced is read with a list instead.
type memberView struct {
	nodes, namespaces, pods toolscache.SharedIndexInformer

	version   *version.Info
	versionAt time.Time
}

// versionEvery is how often the agent asks its cluster for its version:
// an upgrade shows on the hub within that time.
const versionEvery = 5 * time.Minute

// nodeInformer and namespaceInformer watch what inventory counts and
// namespace sync reads, keeping typed objects.
func nodeInformer(dyn dynamic.Interface) toolscache.SharedIndexInformer {
	inf := informerOf(dyn, nodesResource, dyn.Resource(nodesResource), &unstructured.Unstructured{}, "")
	_ = inf.SetTransform(slimNode)
	return inf
}

func namespaceInformer(dyn dynamic.Interface) toolscache.SharedIndexInformer {
	inf := informerOf(dyn, namespacesResource, dyn.Resource(namespacesResource), &unstructured.Unstructured{}, "")
	_ = inf.SetTransform(typed[corev1.Namespace])
	return inf
}

// slimNode keeps of a Node only what inventory counts, so the agent's
// memory does not grow with the size of its cluster's node objects.
func slimNode(obj any) (any, error) {
	n, err := as[corev1.Node](obj)
	if err != nil {
		return nil, err
	}
	slim := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion}}
	slim.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: n.Status.Capacity.Cpu().DeepCopy(), corev1.ResourceMemory: n.Status.Capacity.Memory().DeepCopy()}
	slim.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: n.Status.Allocatable.Cpu().DeepCopy(), corev1.ResourceMemory: n.Status.Allocatable.Memory().DeepCopy()}
	if nodeReady(n) {
		slim.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	}
	return slim, nil
}

func synced(inf toolscache.SharedIndexInformer) bool {
	return inf != nil && inf.HasSynced()
}

// inventory reads what the hub shows about the cluster. Counts the view
// does not hold come from one-item lists (the apiserver reports how many
// remain), so a large cluster costs no more than a small one.
func inventory(ctx context.Context, server rest.Interface, dyn dynamic.Interface, v *memberView) heartbeat.Report {
	r := heartbeat.Report{Reachable: true}
	unreachable := func(err error) heartbeat.Report {
		v.version = nil // ask again once it answers
		r.Reachable, r.Error = false, err.Error()
		return r
	}
	body, err := server.Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx)
	if err != nil && len(body) == 0 && !apierrors.IsServiceUnavailable(err) {
		return unreachable(err)
	}
	if err != nil {
		r.Failing = failingChecks(string(body))
		if len(r.Failing) == 0 {
			r.Failing = []string{"kube-apiserver: readyz: " + err.Error()}
		}
	}
	if v.version == nil || time.Since(v.versionAt) >= versionEvery {
		ver, err := serverVersion(ctx, server)
		if err != nil {
			return unreachable(err)
		}
		v.version, v.versionAt = ver, time.Now()
	}
	r.KubernetesVersion, r.Platform = v.version.GitVersion, v.version.Platform

	var nodes []*corev1.Node
	if synced(v.nodes) {
		for _, o := range v.nodes.GetStore().List() {
			nodes = append(nodes, o.(*corev1.Node))
		}
	} else if l, err := dyn.Resource(nodesResource).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			if n, err := as[corev1.Node](&l.Items[i]); err == nil {
				nodes = append(nodes, n)
			}
		}
	}
	var cpu, mem, acpu, amem resource.Quantity
	for _, n := range nodes {
		r.Nodes.Total++
		if nodeReady(n) {
			r.Nodes.Ready++
		}
		cpu.Add(n.Status.Capacity[corev1.ResourceCPU])
		mem.Add(n.Status.Capacity[corev1.ResourceMemory])
		acpu.Add(n.Status.Allocatable[corev1.ResourceCPU])
		amem.Add(n.Status.Allocatable[corev1.ResourceMemory])
	}
	r.Capacity = fv1.Resources{CPU: cpu, Memory: mem}
	r.Allocatable = fv1.Resources{CPU: acpu, Memory: amem}

	if synced(v.namespaces) {
		r.Namespaces = int32(len(v.namespaces.GetStore().ListKeys()))
	} else if l, err := dyn.Resource(namespacesResource).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		r.Namespaces = count(len(l.Items), l.GetRemainingItemCount())
	}
	if synced(v.pods) {
		r.Pods = int32(len(v.pods.GetStore().ListKeys()))
	} else if l, err := dyn.Resource(podsResource).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		r.Pods = count(len(l.Items), l.GetRemainingItemCount())
	}
	return r
}

func count(items int, remaining *int64) int32 {
	n := int64(items)
	if remaining != nil {
		n += *remaining
	}
	return int32(n)
}

// failingChecks picks the failed checks out of a verbose readyz body.
func failingChecks(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "[-]"); ok {
			out = append(out, "kube-apiserver: "+strings.TrimSpace(rest))
		}
	}
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
