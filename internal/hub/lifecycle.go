package hub

import (
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/lifecycle"
	"flotilla.dev/flotilla/internal/provider/clusterapi"
	"flotilla.dev/flotilla/internal/provider/local"
	"flotilla.dev/flotilla/internal/version"
)

// setupLifecycle runs the reconciler that makes, scales, upgrades and
// deletes provisioned clusters. Local clusters live under the data dir's
// clusters/; Cluster API's are made on the management cluster whose
// kubeconfig a Secret in SystemNamespace holds. Their agents register with
// the hub at hubCfg's address.
func setupLifecycle(mgr manager.Manager, dir *datadir.Dir, hubCfg *rest.Config) (*local.Provider, error) {
	p := &local.Provider{Root: dir.Join("clusters")}
	r := &lifecycle.Reconciler{Client: mgr.GetClient(), Local: p, Hub: hubCfg, Namespace: SystemNamespace}
	r.ClusterAPI = &clusterapi.Provider{
		Hub: mgr.GetClient(),
		// The cache holds only the hub's own Secrets, not the
		// management clusters' kubeconfigs.
		Secrets:    mgr.GetAPIReader(),
		HubConfig:  hubCfg,
		Namespace:  SystemNamespace,
		AgentImage: "flotilla:" + version.Flotilla,
	}
	return p, r.SetupWithManager(mgr)
}
