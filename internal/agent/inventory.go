package agent

import (
	"context"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
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
// namespace sync reads. They are built on the typed client directly: the
// generated informer factory would link every API group's informers and
// listers into the agent, which it never uses.
func nodeInformer(cs kubernetes.Interface) toolscache.SharedIndexInformer {
	nodes := cs.CoreV1().Nodes()
	inf := informerOf(cs, &corev1.Node{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return nodes.List(ctx, o)
	}, nodes.Watch)
	_ = inf.SetTransform(slimNode)
	return inf
}

func namespaceInformer(cs kubernetes.Interface) toolscache.SharedIndexInformer {
	nss := cs.CoreV1().Namespaces()
	return informerOf(cs, &corev1.Namespace{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return nss.List(ctx, o)
	}, nss.Watch)
}

// informerOf tells the reflector whether cs can stream a list as watch
// events; client-go's fake clientset cannot, and an informer that waits for
// that stream never syncs.
func informerOf(cs kubernetes.Interface, obj runtime.Object, list toolscache.ListWithContextFunc, watch toolscache.WatchFuncWithContext) toolscache.SharedIndexInformer {
	lw := &toolscache.ListWatch{ListWithContextFunc: list, WatchFuncWithContext: watch}
	return toolscache.NewSharedIndexInformer(toolscache.ToListWatcherWithWatchListSemantics(lw, cs), obj, 0, toolscache.Indexers{})
}

// slimNode keeps of a Node only what inventory counts, so the agent's
// memory does not grow with the size of its cluster's node objects.
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
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
func inventory(ctx context.Context, cs kubernetes.Interface, v *memberView) heartbeat.Report {
	r := heartbeat.Report{Reachable: true}
	unreachable := func(err error) heartbeat.Report {
		v.version = nil // ask again once it answers
		r.Reachable, r.Error = false, err.Error()
		return r
	}
	if rc := cs.Discovery().RESTClient(); !isNil(rc) {
		body, err := rc.Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx)
		if err != nil && len(body) == 0 && !apierrors.IsServiceUnavailable(err) {
			return unreachable(err)
		}
		if err != nil {
			r.Failing = failingChecks(string(body))
			if len(r.Failing) == 0 {
				r.Failing = []string{"kube-apiserver: readyz: " + err.Error()}
			}
		}
	}
	if v.version == nil || time.Since(v.versionAt) >= versionEvery {
		ver, err := cs.Discovery().ServerVersion()
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
	} else if l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			nodes = append(nodes, &l.Items[i])
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
	} else if l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		r.Namespaces = count(len(l.Items), l.RemainingItemCount)
	}
	if synced(v.pods) {
		r.Pods = int32(len(v.pods.GetStore().ListKeys()))
	} else if l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		r.Pods = count(len(l.Items), l.RemainingItemCount)
	}
	return r
}

// isNil reports whether rc is missing, as in client-go's fake clientset (the
// fleet benchmark's simulated clusters), which has no REST client to probe
// readyz with: a nil interface or a nil pointer in one.
func isNil(rc rest.Interface) bool {
	if rc == nil {
		return true
	}
	v := reflect.ValueOf(rc)
	return v.Kind() == reflect.Pointer && v.IsNil()
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
