package agent

import (
	"context"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
)

// inventory reads what the hub shows about the cluster. Counts of namespaces
// and pods come from one-item lists (the apiserver reports how many remain),
// so a large cluster costs no more than a small one.
func inventory(ctx context.Context, cs kubernetes.Interface) heartbeat.Report {
	r := heartbeat.Report{Reachable: true}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		r.Reachable, r.Error = false, err.Error()
		return r
	}
	r.KubernetesVersion, r.Platform = v.GitVersion, v.Platform

	if rc := cs.Discovery().RESTClient(); !isNil(rc) {
		body, err := rc.Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx)
		if err != nil {
			r.Failing = failingChecks(string(body))
			if len(r.Failing) == 0 {
				r.Failing = []string{"kube-apiserver: readyz: " + err.Error()}
			}
		}
	}

	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		var cpu, mem, acpu, amem resource.Quantity
		for _, n := range nodes.Items {
			r.Nodes.Total++
			if nodeReady(&n) {
				r.Nodes.Ready++
			}
			cpu.Add(n.Status.Capacity[corev1.ResourceCPU])
			mem.Add(n.Status.Capacity[corev1.ResourceMemory])
			acpu.Add(n.Status.Allocatable[corev1.ResourceCPU])
			amem.Add(n.Status.Allocatable[corev1.ResourceMemory])
		}
		r.Capacity = fv1.Resources{CPU: cpu, Memory: mem}
		r.Allocatable = fv1.Resources{CPU: acpu, Memory: amem}
	}
	if l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		r.Namespaces = count(len(l.Items), l.RemainingItemCount)
	}
	if l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
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
