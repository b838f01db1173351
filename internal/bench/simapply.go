package bench

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fakedynamic "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// applyStores makes a simulated cluster answer server-side applies by
// storing the applied object as it is, creating it if absent. The agent is
// the only writer of what it applies (with Force), so that is what a
// member's apiserver would keep. The fake's own apply answers NotFound for
// an object that does not exist yet, so the agent retried every new
// object, and costs a YAML round trip and a strategic merge per apply: at
// 10,000 clusters in one process, more CPU than the hub's fan-out that the
// bench measures.
func applyStores(dyn *fakedynamic.FakeDynamicClient) {
	tracker := dyn.Tracker()
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa, ok := a.(k8stesting.PatchAction)
		if !ok || pa.GetPatchType() != types.ApplyPatchType || pa.GetSubresource() != "" {
			return false, nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(pa.GetPatch()); err != nil {
			return true, nil, apierrors.NewBadRequest(err.Error())
		}
		u.SetName(pa.GetName())
		gvr, ns := pa.GetResource(), pa.GetNamespace()
		err := tracker.Update(gvr, u, ns)
		if apierrors.IsNotFound(err) {
			err = tracker.Create(gvr, u, ns)
		}
		if err != nil {
			return true, nil, err
		}
		obj, err := tracker.Get(gvr, ns, pa.GetName())
		return true, obj, err
	})
}
