package agent

import (
	"sync"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// outbox holds the policy report for the agent's Cluster status until a
// heartbeat reply says the hub stored it: the agent writes its status only
// through its stream.
type outbox struct {
	mu       sync.Mutex
	policies *fv1.ClusterPolicyStatus
	wake     chan struct{} // asks the heartbeat loop to send now
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// put queues p in place of a report not yet stored, and wakes the loop.
func (o *outbox) put(p *fv1.ClusterPolicyStatus) {
	o.mu.Lock()
	o.policies = p
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next is the report to send, if any.
func (o *outbox) next() *fv1.ClusterPolicyStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.policies
}

// stored drops p once the hub has it, unless a newer report came since.
func (o *outbox) stored(p *fv1.ClusterPolicyStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.policies == p {
		o.policies = nil
	}
}
