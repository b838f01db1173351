package realnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	criremote "k8s.io/cri-client/pkg"
)

// RemovePods stops and removes every pod sandbox of the node's runtime
// through CRI, as the kubelet would: their containers stop, CNI releases
// their addresses, and the runtime unmounts and removes their network
// namespaces (which a killed runtime would leave pinned on the host). The
// runtime must run; the kubelet should not, or it starts them again.
func (nd *Node) RemovePods(ctx context.Context) error {
	rs, err := criremote.NewRemoteRuntimeService(ctx, "unix://"+nd.socket(), 5*time.Second, nil, false)
	if err != nil {
		return err
	}
	defer rs.Close(ctx)
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", nd.Name, err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, sb := range sandboxes {
		wg.Go(func() {
			err := rs.StopPodSandbox(ctx, sb.Id)
			if err == nil {
				err = rs.RemovePodSandbox(ctx, sb.Id)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("pod %s/%s: %w", sb.GetMetadata().GetNamespace(), sb.GetMetadata().GetName(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
