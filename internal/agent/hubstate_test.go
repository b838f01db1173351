package agent

import (
	"testing"

	"flotilla.dev/flotilla/internal/heartbeat"
)

// A push of desired policies wakes the policy sync and leaves the namespace
// sync alone: at 5,000 simulated clusters, a sync of every cluster's
// namespaces for each push held a policy's fan-out back by seconds.
func TestPushWakesPoliciesOnly(t *testing.T) {
	s := newHubState(nil)
	var policies, namespaces int
	s.onChange = append(s.onChange, func() { policies++ })
	s.onNamespaces = append(s.onNamespaces, func() { namespaces++ })
	s.pushed(heartbeat.Desired{Digest: "d1"})
	if policies != 1 || namespaces != 0 {
		t.Errorf("after a push: policy sync woken %d times (want 1), namespace sync %d (want 0)", policies, namespaces)
	}
}
