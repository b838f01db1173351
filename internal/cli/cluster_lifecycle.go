package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
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
'flotilla agent --cluster-kubeconfig F --bootstrap-kubeconfig F --data-dir D'.

The agent is bound to cluster-admin in the cluster: it applies policies there. With
--read-only it is bound instead to the ClusterRole flotilla-agent-read-only: get, list
and watch of nodes, namespaces and pods, and in its namespace flotilla-system its own
identity Secret; it creates, changes and deletes nothing else. The cluster's health,
inventory, namespaces and insights reach the hub as for any cluster, but Flotilla
writes nothing there: every policy that applies to it is reported not enforced
(insight NotEnforced, reason ReadOnlyAttach), namespaces are neither created nor
deleted through the hub, backups, restores and access through the hub are refused,
and on detach the agent removes nothing (delete its objects yourself). The choice is
made at attach and cannot change: detach and attach again. The guarantee is the
manifest's RBAC: an agent run as a process has whatever its --cluster-kubeconfig
grants (give it --read-only and a read-only identity too).`,
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
				objs := attach.AgentObjectsFor(boot, attach.AgentOptions{Image: image, ReadOnly: opts.ReadOnly})
				if clusterCfg != nil {
					if err := attach.Install(ctx, clusterCfg, objs, hub.Scheme()); err != nil {
						// Nothing half-created: the hub side goes too.
						_ = attach.Detach(context.WithoutCancel(ctx), cl, opts.Name, true, 30*time.Second)
						return err
					}
					if opts.ReadOnly {
						fmt.Fprintf(c.OutOrStdout(), "cluster %s attached read-only; the agent was installed in its namespace flotilla-system, bound to the ClusterRole %s\n", opts.Name, fv1.ReadOnlyAgentRole)
						return nil
					}
					fmt.Fprintf(c.OutOrStdout(), "cluster %s attached; the agent was installed in its namespace flotilla-system\n", opts.Name)
					return nil
				}
				if output == "kubeconfig" {
					if opts.ReadOnly {
						fmt.Fprintf(c.ErrOrStderr(), "cluster %s is attached read-only: run its agent with --read-only, and with a --cluster-kubeconfig that grants no more than the ClusterRole %s of 'flotilla cluster attach --read-only' (-o yaml): the agent has whatever its kubeconfig grants\n", opts.Name, fv1.ReadOnlyAgentRole)
					}
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
	f.BoolVar(&opts.ReadOnly, "read-only", false, "attach read-only: the agent may only get, list and watch in the cluster (ClusterRole "+fv1.ReadOnlyAgentRole+"), and every policy is reported not enforced there; cannot change after attach")
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
				var before fv1.Cluster
				readOnly := cl.Get(ctx, client.ObjectKey{Name: args[0]}, &before) == nil && before.Spec.ReadOnly
				if err := attach.Detach(ctx, cl, args[0], force, timeout); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s detached\n", args[0])
				if readOnly {
					// Its agent may delete nothing, itself included.
					fmt.Fprintf(c.OutOrStdout(), "it was attached read-only, so its agent removed nothing there; remove the agent with\n  kubectl delete namespace flotilla-system; kubectl delete clusterrolebinding,clusterrole %s\n", fv1.ReadOnlyAgentRole)
				}
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
