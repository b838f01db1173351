package hub

import (
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/lifecycle"
	"flotilla.dev/flotilla/internal/provider/local"
)

// setupLifecycle runs the reconciler that makes, scales, upgrades and
// deletes provisioned clusters. Local clusters live under the data dir's
// clusters/; their agents register with the hub at hubCfg's address.
func setupLifecycle(mgr manager.Manager, dir *datadir.Dir, hubCfg *rest.Config) (*local.Provider, error) {
	p := &local.Provider{Root: dir.Join("clusters")}
	r := &lifecycle.Reconciler{Client: mgr.GetClient(), Local: p, Hub: hubCfg, Namespace: SystemNamespace}
	return p, r.SetupWithManager(mgr)
}
