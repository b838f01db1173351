// Package drain cordons nodes and moves their pods away through the
// Eviction API, as kubectl drain does: the apiserver then refuses an
// eviction that would break a PodDisruptionBudget, and a drain waits for
// the budget instead of forcing anything.
package drain

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Cordon marks node unschedulable (or, with off, schedulable again).
func Cordon(ctx context.Context, cs kubernetes.Interface, node string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("cordoning node %s: %w", node, err)
	}
	return nil
}

// Result is how far a drain came.
type Result struct {
	// Remaining pods still on the node (being evicted, or refused).
	Remaining int
	// BlockedBy says which PodDisruptionBudget refused an eviction, as
	// the apiserver put it; empty when none did.
	BlockedBy string
}

// Done says whether the node has no pod left to move.
func (r Result) Done() bool { return r.Remaining == 0 }

// Evict asks for the eviction of every pod on node that a drain moves
// (not DaemonSet pods, mirror pods or finished ones), once per call: a
// caller calls again until Done, as pods terminate and budgets allow.
func Evict(ctx context.Context, cs kubernetes.Interface, node string) (Result, error) {
	pods, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return Result{}, fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	var r Result
	for i := range pods.Items {
		p := &pods.Items[i]
		if !moves(p) {
			continue
		}
		r.Remaining++
		if p.DeletionTimestamp != nil {
			continue // on its way
		}
		err := cs.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		})
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err):
			if r.BlockedBy == "" {
				r.BlockedBy = budget(err, p)
			}
		default:
			return r, fmt.Errorf("evicting pod %s/%s from node %s: %w", p.Namespace, p.Name, node, err)
		}
	}
	return r, nil
}

// moves says whether a drain moves p.
func moves(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == "DaemonSet" {
			return false
		}
	}
	return true
}

// budget names what refused p's eviction, from the apiserver's answer.
func budget(err error, p *corev1.Pod) string {
	var msgs []string
	if st, ok := err.(apierrors.APIStatus); ok && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if c.Type == policyv1.DisruptionBudgetCause {
				msgs = append(msgs, c.Message)
			}
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, err.Error())
	}
	return fmt.Sprintf("evicting pod %s/%s: %s", p.Namespace, p.Name, strings.Join(msgs, "; "))
}
