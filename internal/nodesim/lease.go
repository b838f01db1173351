package nodesim

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// leaseSeconds is how long a node's lease lasts, as the kubelet's default.
const leaseSeconds = 40

// KeepLeases renews each simulated node's Lease every interval until ctx
// ends, as kubelets do: for a control plane that runs the node lifecycle
// controller (next to real nodes), which marks nodes without a fresh lease
// NotReady.
func (s *Sim) KeepLeases(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.mu.Lock()
		names := make([]string, 0, len(s.nodes))
		for n := range s.nodes {
			names = append(names, n)
		}
		s.mu.Unlock()
		for _, n := range names {
			if err := s.renew(ctx, n); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "renewing simulated node lease", "node", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sim) renew(ctx context.Context, node string) error {
	leases := s.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](leaseSeconds), RenewTime: &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}
