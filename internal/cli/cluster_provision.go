package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/lifecycle"
)

// addClusterProvisionCmds adds the verbs of clusters Flotilla makes:
// create, scale, upgrade, delete and kubeconfig.
func addClusterProvisionCmds(cmd *cobra.Command, o *hubOptions) {
	cmd.AddCommand(newClusterCreateCmd(o), newClusterScaleCmd(o), newClusterUpgradeCmd(o), newClusterDeleteCmd(o), newClusterKubeconfigCmd(o))
	cmd.AddCommand(newClusterImportCmd(o))
}

// defaultPool is the pool create makes and scale changes when not told.
const defaultPool = "workers"

// realPool is the pool of real nodes create makes with --real-nodes.
const realPool = "real"

func newClusterCreateCmd(o *hubOptions) *cobra.Command {
	var (
		provider, version, group, pool string
		nodes, controlPlane, realNodes int32
		labels                         []string
		cpu, memory                    = resource.MustParse("4"), resource.MustParse("16Gi")
		w                              waitFlags
		capi                           *clusterAPIFlags
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a cluster with a provider; it attaches itself once it runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			lbls, err := parseLabels(labels)
			if err != nil {
				return err
			}
			cl := &fv1.Cluster{
				ObjectMeta: metav1.ObjectMeta{Name: args[0], Labels: lbls},
				Spec: fv1.ClusterSpec{Group: group, Lifecycle: &fv1.ClusterLifecycle{
					Provider:     fv1.Provider(provider),
					Version:      version,
					ControlPlane: fv1.ControlPlane{Replicas: controlPlane},
					NodePools:    []fv1.NodePool{{Name: pool, Replicas: nodes, CPU: cpu, Memory: memory}},
				}},
			}
			if realNodes > 0 {
				cl.Spec.Lifecycle.NodePools = append(cl.Spec.Lifecycle.NodePools, fv1.NodePool{Name: realPool, Replicas: realNodes, Real: true})
			}
			if err := capi.set(cl.Spec.Lifecycle); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, hc client.Client) error {
				if err := hc.Get(ctx, client.ObjectKey{Name: group}, &fv1.ClusterGroup{}); apierrors.IsNotFound(err) {
					return fmt.Errorf("cluster group %q does not exist; create it with 'flotilla clustergroup create %s' or choose another --group", group, group)
				}
				if err := hc.Create(ctx, cl); err != nil {
					if apierrors.IsAlreadyExists(err) {
						return fmt.Errorf("cluster %q already exists; choose another name, or delete it first", cl.Name)
					}
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s created\n", cl.Name)
				return w.follow(ctx, c, hc, cl.Name, true)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&provider, "provider", string(fv1.ProviderLocal), "provider that makes the cluster (flotilla versions)")
	f.StringVar(&version, "version", kubebin.Embedded(), "Kubernetes version")
	f.Int32Var(&nodes, "nodes", 3, "simulated nodes in the pool")
	f.StringVar(&pool, "pool", defaultPool, "name of the node pool")
	f.Int32Var(&realNodes, "real-nodes", 0, "real nodes (a kubelet and containerd each; provider local, needs root), in a second pool named "+realPool)
	f.Int32Var(&controlPlane, "control-plane", 1, "control-plane replicas: 1, or 3 to keep the API answering through upgrades")
	f.StringVar(&group, "group", fv1.DefaultName, "cluster group")
	f.StringArrayVar(&labels, "label", nil, "label k=v of the cluster (repeatable)")
	f.Var(quantityFlag{&cpu}, "node-cpu", "CPU of each node")
	f.Var(quantityFlag{&memory}, "node-memory", "memory of each node")
	capi = addClusterAPIFlags(f)
	w.add(cmd)
	return cmd
}

func newClusterScaleCmd(o *hubOptions) *cobra.Command {
	var (
		pool  string
		nodes int32
		w     waitFlags
	)
	cmd := &cobra.Command{
		Use:   "scale NAME --nodes N",
		Short: "Change how many nodes a pool of a cluster Flotilla made has",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("nodes") {
				return errors.New("--nodes is required: the number of nodes the pool should have")
			}
			return o.run(func(ctx context.Context, hc client.Client) error {
				err := editLifecycle(ctx, hc, args[0], "scale", func(l *fv1.ClusterLifecycle) error {
					p := pool
					if p == "" && len(l.NodePools) == 1 {
						p = l.NodePools[0].Name
					}
					i := slices.IndexFunc(l.NodePools, func(np fv1.NodePool) bool { return np.Name == p })
					if i < 0 {
						return fmt.Errorf("cluster %s has no node pool %q; its pools: %s", args[0], p, poolNames(l))
					}
					l.NodePools[i].Replicas = nodes
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s scaling to %d nodes\n", args[0], nodes)
				return w.follow(ctx, c, hc, args[0], false)
			})
		},
	}
	cmd.Flags().Int32Var(&nodes, "nodes", 0, "nodes the pool should have")
	cmd.Flags().StringVar(&pool, "pool", "", "node pool (default: the cluster's only pool)")
	w.add(cmd)
	return cmd
}

func poolNames(l *fv1.ClusterLifecycle) string {
	var s []string
	for _, p := range l.NodePools {
		s = append(s, p.Name)
	}
	return fmt.Sprint(s)
}

func newClusterUpgradeCmd(o *hubOptions) *cobra.Command {
	var (
		version string
		w       waitFlags
	)
	cmd := &cobra.Command{
		Use:   "upgrade NAME --version V",
		Short: "Upgrade a cluster Flotilla made: control plane first, then the nodes one at a time",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if version == "" {
				return errors.New("--version is required (flotilla versions lists them)")
			}
			return o.run(func(ctx context.Context, hc client.Client) error {
				err := editLifecycle(ctx, hc, args[0], "upgrade", func(l *fv1.ClusterLifecycle) error {
					l.Version = version
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s upgrading to %s\n", args[0], version)
				return w.follow(ctx, c, hc, args[0], false)
			})
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "Kubernetes version to upgrade to")
	w.add(cmd)
	return cmd
}

func newClusterDeleteCmd(o *hubOptions) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a cluster Flotilla made: stop it, remove its data, and remove it from the hub",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, hc client.Client) error {
				var cl fv1.Cluster
				if err := getMade(ctx, hc, args[0], &cl, "so Flotilla will not delete it; to remove it from the fleet, run 'flotilla cluster detach %s'"); err != nil {
					return err
				}
				if err := hc.Delete(ctx, &cl); client.IgnoreNotFound(err) != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "cluster %s deleting\n", cl.Name)
				if !w.wait {
					return nil
				}
				ctx, cancel := context.WithTimeout(ctx, w.timeout)
				defer cancel()
				line := newLiveLine(c.ErrOrStderr())
				for {
					err := hc.Get(ctx, client.ObjectKey{Name: cl.Name}, &cl)
					if apierrors.IsNotFound(err) {
						line.show(cl.Name + ": deleted")
						line.end()
						return nil
					}
					if err == nil && cl.Status.Lifecycle != nil {
						line.show(cl.Name + ": " + lifecycleLine(&cl))
					}
					select {
					case <-ctx.Done():
						line.end()
						return fmt.Errorf("cluster %s is still being deleted after %s", cl.Name, w.timeout)
					case <-time.After(500 * time.Millisecond):
					}
				}
			})
		},
	}
	w.add(cmd)
	return cmd
}

func newClusterKubeconfigCmd(o *hubOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "kubeconfig NAME",
		Short: "Print the admin kubeconfig of a cluster Flotilla made",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, hc client.Client) error {
				var cl fv1.Cluster
				if err := getMade(ctx, hc, args[0], &cl, "the hub holds no admin kubeconfig of it; 'flotilla kubeconfig %s' gives one through the hub"); err != nil {
					return err
				}
				var s corev1.Secret
				err := hc.Get(ctx, client.ObjectKey{Namespace: hub.SystemNamespace, Name: lifecycle.KubeconfigSecret(cl.Name)}, &s)
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("cluster %s has no kubeconfig yet: its control plane is not up (%s)", cl.Name, lifecycleLine(&cl))
				}
				if err != nil {
					return err
				}
				_, err = c.OutOrStdout().Write(s.Data["value"])
				return err
			})
		},
	}
}

func getCluster(ctx context.Context, hc client.Client, name string, cl *fv1.Cluster) error {
	err := hc.Get(ctx, client.ObjectKey{Name: name}, cl)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %q not found; see 'flotilla cluster list'", name)
	}
	return err
}

// getMade reads cluster name, refusing one Flotilla only attached with
// "cluster NAME was attached, not made by Flotilla, " and why (whose %s, if
// any, is the name again).
func getMade(ctx context.Context, hc client.Client, name string, cl *fv1.Cluster, why string) error {
	if err := getCluster(ctx, hc, name, cl); err != nil {
		return err
	}
	if cl.Spec.Lifecycle == nil {
		if strings.Contains(why, "%s") {
			why = fmt.Sprintf(why, name)
		}
		return fmt.Errorf("cluster %s was attached, not made by Flotilla, %s", name, why)
	}
	return nil
}

// editLifecycle changes a made cluster's lifecycle with edit, as one
// update: the hub's validation (a downgrade, a skipped minor version, a
// negative count) answers for the CLI as it does for kubectl.
func editLifecycle(ctx context.Context, hc client.Client, name, verb string, edit func(*fv1.ClusterLifecycle) error) error {
	var cl fv1.Cluster
	if err := getMade(ctx, hc, name, &cl, "Flotilla cannot "+verb+" it; its owner does"); err != nil {
		return err
	}
	if err := edit(cl.Spec.Lifecycle); err != nil {
		return err
	}
	return hc.Update(ctx, &cl)
}

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "show progress and return when done (non-zero if it fails)")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 30*time.Minute, "how long --wait waits")
}

// follow shows a made cluster's progress until its spec is carried out
// (and, for a new cluster, it is Healthy on the hub) or it fails.
func (w *waitFlags) follow(ctx context.Context, c *cobra.Command, hc client.Client, name string, created bool) error {
	if !w.wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	line := newLiveLine(c.ErrOrStderr())
	defer line.end()
	for {
		var cl fv1.Cluster
		if err := hc.Get(ctx, client.ObjectKey{Name: name}, &cl); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cluster %s not done after %s; it goes on: see 'flotilla cluster get %s'", name, w.timeout, name)
			}
			return err
		}
		st := cl.Status.Lifecycle
		text := lifecycleLine(&cl)
		done := st != nil && st.ObservedGeneration == cl.Generation && st.Phase == fv1.LifecycleReady &&
			meta.IsStatusConditionTrue(st.Conditions, fv1.ConditionReady)
		if done && created && cl.Status.Health != fv1.HealthHealthy {
			done, text = false, text+"; attaching (health "+string(cl.Status.Health)+")"
		}
		line.show(name + ": " + text)
		if done {
			return nil
		}
		if st != nil && st.ObservedGeneration == cl.Generation && st.Phase == fv1.LifecycleFailed {
			return fmt.Errorf("cluster %s failed: %s", name, conditionMessage(st.Conditions))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s not done after %s; it goes on: see 'flotilla cluster get %s'", name, w.timeout, name)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// lifecycleLine is a made cluster's phase, progress and what it waits for.
func lifecycleLine(cl *fv1.Cluster) string {
	st := cl.Status.Lifecycle
	if st == nil || (st.ObservedGeneration < cl.Generation && cl.DeletionTimestamp == nil) {
		return "waiting for the hub to take the change"
	}
	s := string(st.Phase)
	if st.Progress != "" {
		s += ", " + st.Progress
	}
	if cond := meta.FindStatusCondition(st.Conditions, fv1.ConditionReady); cond != nil && cond.Message != st.Progress && cond.Status != metav1.ConditionTrue {
		s += " (" + cond.Message + ")"
	}
	return s
}

func conditionMessage(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, fv1.ConditionReady); c != nil {
		return c.Message
	}
	return "no reason given"
}

// liveLine shows a changing status line: rewritten in place on a
// terminal, a line per change otherwise.
type liveLine struct {
	w    io.Writer
	tty  bool
	last string
}

func newLiveLine(w io.Writer) *liveLine { return &liveLine{w: w, tty: isTerminal(w)} }

func (l *liveLine) show(s string) {
	if s == l.last {
		return
	}
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s", s)
	} else {
		fmt.Fprintln(l.w, s)
	}
	l.last = s
}

// end finishes a line drawn in place.
func (l *liveLine) end() {
	if l.tty && l.last != "" {
		fmt.Fprintln(l.w)
		l.last = ""
	}
}
