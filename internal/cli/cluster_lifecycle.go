package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/version"
)

// addClusterLifecycleCmds adds `cluster attach` and `cluster detach`.
func addClusterLifecycleCmds(cmd *cobra.Command, o *hubOptions) {
	cmd.AddCommand(newAttachCmd(o), newDetachCmd(o))
}

func newAttachCmd(o *hubOptions) *cobra.Command {
	var (
		opts              attach.Options
		labels            []string
		clusterKubeconfig string
		output            string
		image             string
	)
	cmd := &cobra.Command{
		Use:   "attach NAME",
		Short: "Attach a cluster: create it on the hub with a single-use bootstrap credential",
		Long: `Attach a cluster. With --cluster-kubeconfig the agent is installed into that
cluster; otherwise the manifest to apply is printed (kubectl apply -f -). To run the
agent as a process instead, write the bootstrap kubeconfig with -o kubeconfig and run
'flotilla agent --cluster-kubeconfig F --bootstrap-kubeconfig F --data-dir D'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Name = args[0]
			var err error
			if opts.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			if output != "yaml" && output != "kubeconfig" {
				return fmt.Errorf("unknown output format %q; use -o yaml or -o kubeconfig", output)
			}
			// Read the member's kubeconfig first: a bad one must not leave a
			// half-attached cluster on the hub.
			var clusterCfg *rest.Config
			if clusterKubeconfig != "" {
				if clusterCfg, err = kubeconfig.Load(clusterKubeconfig); err != nil {
					return fmt.Errorf("%v; pass the member cluster's kubeconfig to --cluster-kubeconfig", err)
				}
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				hubCfg, err := kubeconfig.Load(o.kubeconfig)
				if err != nil {
					return err
				}
				boot, err := attach.Attach(ctx, cl, hubCfg, opts)
				if err != nil {
					return err
				}
				objs := attach.AgentObjects(boot, image)
				if clusterCfg != nil {
					if err := attach.Install(ctx, clusterCfg, objs, hub.Scheme()); err != nil {
						// Nothing half-created: the hub side goes too.
						_ = attach.Detach(context.WithoutCancel(ctx), cl, opts.Name, true, 30*time.Second)
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "cluster %s attached; the agent was installed in its namespace flotilla-system\n", opts.Name)
					return nil
				}
				if output == "kubeconfig" {
					_, err := c.OutOrStdout().Write(boot)
					return err
				}
				m, err := attach.Manifest(objs)
				if err != nil {
					return err
				}
				_, err = c.OutOrStdout().Write(m)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Group, "group", "default", "cluster group")
	f.StringArrayVar(&labels, "label", nil, "label k=v (repeatable)")
	f.StringVar(&clusterKubeconfig, "cluster-kubeconfig", "", "install the agent into the cluster of this kubeconfig")
	f.DurationVar(&opts.TTL, "ttl", time.Hour, "how long the bootstrap credential is valid")
	f.StringVarP(&output, "output", "o", "yaml", "yaml (agent manifest) or kubeconfig (bootstrap kubeconfig only)")
	f.StringVar(&image, "agent-image", "flotilla:"+version.Flotilla, "container image of the agent")
	return cmd
}

func newDetachCmd(o *hubOptions) *cobra.Command {
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "detach NAME",
		Short: "Detach a cluster: its agent removes what Flotilla created there, then the hub forgets it",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := attach.Detach(ctx, cl, args[0], force, timeout); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s detached\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "clean only the hub side, for a cluster that is gone for good")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the agent's cleanup")
	return cmd
}

func parseLabels(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q is not k=v", kv)
		}
		out[k] = v
	}
	return out, nil
}
