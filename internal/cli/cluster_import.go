package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/provider/clusterapi"
	"flotilla.dev/flotilla/internal/version"
)

func newClusterImportCmd(o *hubOptions) *cobra.Command {
	var (
		opts           clusterapi.ImportOptions
		capiKubeconfig string
	)
	cmd := &cobra.Command{
		Use:   "import --capi-kubeconfig F",
		Short: "Attach the clusters Cluster API made on a management cluster, and install the agent into each",
		Long: `Attach the clusters Cluster API made on a management cluster: each cluster.x-k8s.io Cluster
whose kubeconfig Secret (NAME-kubeconfig) exists becomes a hub cluster of the same name, with the
agent installed into it through that kubeconfig. Flotilla did not make them, so it does not scale,
upgrade or delete them; each is annotated flotilla.dev/imported-from=clusterapi/NAMESPACE/NAME.
Clusters already on the hub, and clusters without a kubeconfig yet, are skipped.`,
		Example: `  flotilla cluster import --capi-kubeconfig mgmt.kubeconfig --namespace fleet --group prod`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if capiKubeconfig == "" {
				return errors.New("--capi-kubeconfig is required: the kubeconfig of the Cluster API management cluster")
			}
			var err error
			if opts.Management, err = kubeconfig.Load(capiKubeconfig); err != nil {
				return fmt.Errorf("%v; pass the management cluster's kubeconfig to --capi-kubeconfig", err)
			}
			return o.run(func(ctx context.Context, hc client.Client) error {
				hubCfg, err := kubeconfig.Load(o.kubeconfig)
				if err != nil {
					return err
				}
				out := c.OutOrStdout()
				res, err := clusterapi.Import(ctx, hc, hubCfg, opts, func(r clusterapi.Imported) {
					fmt.Fprintf(out, "%s: %s: %s\n", r.Source, r.Outcome, r.Message)
				})
				if err != nil {
					return err
				}
				n := map[clusterapi.Outcome]int{}
				for _, r := range res {
					n[r.Outcome]++
				}
				where := "in all namespaces"
				if opts.Namespace != "" {
					where = "in namespace " + opts.Namespace
				}
				fmt.Fprintf(out, "%d Cluster API clusters %s: %d attached, %d skipped, %d failed\n", len(res), where, n[clusterapi.Attached], n[clusterapi.Skipped], n[clusterapi.Failed])
				if n[clusterapi.Failed] > 0 {
					return fmt.Errorf("%d of %d clusters failed to import; see above", n[clusterapi.Failed], len(res))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&capiKubeconfig, "capi-kubeconfig", "", "kubeconfig of the Cluster API management cluster")
	f.StringVar(&opts.Namespace, "namespace", "", "namespace of the Cluster API Clusters (default: all namespaces)")
	f.StringVar(&opts.Group, "group", fv1.DefaultName, "cluster group the clusters join")
	f.StringVar(&opts.AgentImage, "agent-image", "flotilla:"+version.Flotilla, "container image of the agent")
	return cmd
}

// clusterAPIFlags are create's flags of the clusterapi provider.
type clusterAPIFlags struct {
	secret, namespace, class, workerClass string
	flags                                 *pflag.FlagSet
}

// addClusterAPIFlags adds create's flags of the clusterapi provider to f.
func addClusterAPIFlags(f *pflag.FlagSet) *clusterAPIFlags {
	a := &clusterAPIFlags{flags: f}
	f.StringVar(&a.secret, "capi-kubeconfig-secret", "", "provider clusterapi: Secret in the hub's namespace flotilla-system whose key value is the management cluster's kubeconfig")
	f.StringVar(&a.namespace, "capi-namespace", clusterapi.DefaultNamespace, "provider clusterapi: namespace of the Cluster API Cluster on the management cluster")
	f.StringVar(&a.class, "capi-class", "", "provider clusterapi: the ClusterClass of the cluster's managed topology")
	f.StringVar(&a.workerClass, "capi-worker-class", "", "provider clusterapi: machine deployment class of the node pool in the ClusterClass (default: the pool's name)")
	return a
}

// set puts the flags into l, and says what is missing or out of place.
func (a *clusterAPIFlags) set(l *fv1.ClusterLifecycle) error {
	if l.Provider != fv1.ProviderClusterAPI {
		for _, name := range []string{"capi-kubeconfig-secret", "capi-namespace", "capi-class", "capi-worker-class"} {
			if a.flags.Changed(name) {
				return fmt.Errorf("--%s is for --provider %s only", name, fv1.ProviderClusterAPI)
			}
		}
		return nil
	}
	if a.secret == "" {
		return fmt.Errorf("--capi-kubeconfig-secret is required with --provider %s: the Secret in the hub's namespace flotilla-system whose key value is the management cluster's kubeconfig", fv1.ProviderClusterAPI)
	}
	if a.class == "" {
		return fmt.Errorf("--capi-class is required with --provider %s: the ClusterClass on the management cluster that the cluster is made from", fv1.ProviderClusterAPI)
	}
	l.ClusterAPI = &fv1.ClusterAPITopology{KubeconfigSecret: a.secret, Namespace: a.namespace, Class: a.class}
	for i := range l.NodePools {
		l.NodePools[i].Class = a.workerClass
	}
	return nil
}
