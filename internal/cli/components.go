package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	"flotilla.dev/flotilla/internal/agent"
	"flotilla.dev/flotilla/internal/agentlimits"
	"flotilla.dev/flotilla/internal/controller"
	"flotilla.dev/flotilla/internal/etcd"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/localcluster"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/realnode"
	"flotilla.dev/flotilla/internal/up"
	"flotilla.dev/flotilla/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Flotilla's version and the Kubernetes version it embeds",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintf(c.OutOrStdout(), "flotilla %s\nkubernetes %s\n", version.Flotilla, version.Kubernetes())
		},
	}
}

func newUpCmd() *cobra.Command {
	cfg := up.Config{DataDir: ".flotilla", Clusters: 2, Nodes: 2}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a hub and local clusters on this machine (Ctrl-C stops them)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg.Out = c.OutOrStdout()
			return up.Run(signalContext(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the hub and clusters' state")
	cmd.Flags().IntVar(&cfg.Clusters, "clusters", cfg.Clusters, "number of local clusters")
	cmd.Flags().IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "simulated nodes per local cluster")
	cmd.Flags().IntVar(&cfg.RealNodes, "real-nodes", 0, "real nodes per local cluster: a kubelet and containerd each, running pods for real (needs root; docs/real-nodes.md)")
	return cmd
}

func newHubCmd() *cobra.Command {
	var cfg hub.Config
	var etcdServers string
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the hub: Flotilla's API and controllers",
		Long: `Run the hub. By default it embeds etcd and kube-apiserver and keeps its state in
--data-dir, writing DATA_DIR/admin.kubeconfig. With --etcd-servers it stores its
state in an external etcd cluster; with --kubeconfig it installs Flotilla's API into
an existing cluster and runs only the controllers there.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if etcdServers != "" {
				cfg.EtcdServers = strings.Split(etcdServers, ",")
			}
			if cfg.Kubeconfig != "" && cfg.EtcdServers != nil {
				return fmt.Errorf("--kubeconfig and --etcd-servers exclude each other: the host cluster brings its own storage")
			}
			logToFile(filepath.Join(cfg.DataDir, "logs", "hub.log"))
			cfg.OnReady = func() {
				if cfg.Kubeconfig != "" {
					fmt.Fprintf(c.OutOrStdout(), "Flotilla hub ready on the cluster of %s\n", cfg.Kubeconfig)
					return
				}
				fmt.Fprintf(c.OutOrStdout(), "Flotilla hub ready; kubeconfig: %s\n", filepath.Join(cfg.DataDir, "admin.kubeconfig"))
			}
			return hub.Run(signalContext(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", ".flotilla/hub", "directory for the hub's state")
	cmd.Flags().IntVar(&cfg.Port, "port", 0, "apiserver port on 127.0.0.1 (default: the last one used, else a free one)")
	cmd.Flags().StringVar(&etcdServers, "etcd-servers", "", "comma-separated client URLs of an external etcd cluster")
	cmd.Flags().StringVar(&cfg.AgentAddress, "agent-address", "", "host or IP agents reach the hub's agent endpoint at (default 127.0.0.1); a non-loopback one listens on every interface")
	cmd.Flags().IntVar(&cfg.AgentPort, "agent-port", 0, "port of the agent endpoint (default: the last one used, else a free one)")
	cmd.Flags().StringVar(&cfg.AgentAdvertise, "agent-advertise-address", "", "host:port agents dial for the agent endpoint when a load balancer, NAT or proxy stands in front of the hub (default: --agent-address and the port)")
	cmd.Flags().StringVar(&cfg.Kubeconfig, "kubeconfig", "", "run on this existing cluster instead of an embedded apiserver")
	cmd.Flags().DurationVar(&cfg.AgentCertificateLifetime, "agent-certificate-lifetime", controller.DefaultAgentCertificateLifetime,
		"longest client certificate the hub issues an agent (min 10m); agents renew at 80 % of it")
	cmd.Flags().IntVar(&cfg.MaxNamespacesPerCluster, "max-namespaces-per-cluster", agentlimits.MaxNamespacesPerCluster,
		"most namespaces one cluster's agent may report to the hub; bounds what one agent identity can store there")
	cmd.Flags().StringVar(&cfg.AuthenticationConfig, "authentication-config", "", "structured authentication configuration file (AuthenticationConfiguration, apiserver.config.k8s.io) for the hub's apiserver: OIDC issuers users log in with")
	cmd.Flags().StringVar(&cfg.MetricsBindAddress, "metrics-bind-address", hub.DefaultMetricsBindAddress, "serve /metrics (Prometheus) at this address; port 0 means one picked once and kept in the data dir, \"0\" serves none")
	cmd.Flags().IntVar(&cfg.AuditLogMaxSize, "audit-log-max-size", 100, "megabytes at which the hub's audit log (logs/audit.log in the data dir) rotates; ten rotated files are kept")
	return cmd
}

func newLocalClusterCmd() *cobra.Command {
	cfg := localcluster.NewConfig()
	var realNodes int
	cmd := &cobra.Command{
		Use:   "localcluster",
		Short: "Run one local Kubernetes cluster with simulated nodes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				cfg.DataDir = filepath.Join(".flotilla", "clusters", cfg.Name)
			}
			if realNodes > 0 {
				return runWithRealNodes(c, cfg, realNodes)
			}
			logToFile(filepath.Join(cfg.DataDir, "logs", "localcluster.log"))
			cfg.OnReady = func() {
				fmt.Fprintf(c.OutOrStdout(), "local cluster %s ready; kubeconfig: %s\n", cfg.Name, filepath.Join(cfg.DataDir, "kubeconfig"))
			}
			return localcluster.Run(signalContext(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", cfg.Name, "cluster name")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the cluster's state (default .flotilla/clusters/NAME)")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of simulated nodes")
	f.IntVar(&cfg.Port, "port", 0, "apiserver port on 127.0.0.1 (default: the last one used, else a free one)")
	f.Var(quantityFlag{&cfg.NodeCPU}, "node-cpu", "CPU capacity of each simulated node")
	f.Var(quantityFlag{&cfg.NodeMemory}, "node-memory", "memory capacity of each simulated node")
	f.IntVar(&realNodes, "real-nodes", 0, "number of real nodes (a kubelet and containerd each; needs root, docs/real-nodes.md): the cluster then runs under the local provider's supervisor, as 'flotilla cluster create' makes them")
	f.BoolVar(&cfg.NoBootstrapTokenAuth, "no-bootstrap-token-auth", false, "start the apiserver without bootstrap-token authentication, as some managed clusters run (a hub on it cannot register agents; for tests)")
	return cmd
}

func newAgentCmd() *cobra.Command {
	cfg := agent.NewConfig()
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent that connects a cluster to the hub (dials out only)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return fmt.Errorf("--data-dir is required: the agent keeps its key and identity there")
			}
			logToFile(filepath.Join(cfg.DataDir, "logs", "agent.log"))
			return agent.Run(signalContext(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ClusterKubeconfig, "cluster-kubeconfig", "", "kubeconfig of the member cluster (default: in-cluster)")
	f.StringVar(&cfg.BootstrapKubeconfig, "bootstrap-kubeconfig", "", "kubeconfig with the single-use bootstrap credential from 'flotilla cluster attach'")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the agent's key and identity")
	f.StringVar(&cfg.IdentitySecret, "identity-secret", "", "keep the hub identity in this Secret (NAMESPACE/NAME) of the member cluster instead of --data-dir, for an agent in a pod")
	f.DurationVar(&cfg.Interval, "heartbeat-interval", cfg.Interval, "time between heartbeats")
	f.DurationVar(&cfg.CertTTL, "certificate-ttl", cfg.CertTTL, "lifetime asked for the agent's certificate (at least 10m); renewed at 80%")
	f.StringVar(&cfg.MetricsBindAddress, "metrics-bind-address", "", "serve /metrics (Prometheus) at this address, such as :8080 in a pod (default: none)")
	f.BoolVar(&cfg.ReadOnly, "read-only", false, "write nothing in the cluster but the identity Secret: apply no policy (each is reported not enforced), create or delete no namespace, run no backup or restore, act for no user, clean nothing up on detach (set by the manifest of 'cluster attach --read-only')")
	return cmd
}

// newEtcdCmd runs one member of an etcd cluster, for a hub on --etcd-servers.
func newEtcdCmd() *cobra.Command {
	var cfg etcd.Config
	cmd := &cobra.Command{
		Use:    "etcd",
		Short:  "Run one etcd member (for a highly available hub)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := signalContext()
			m, err := etcd.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			select {
			case <-ctx.Done():
				return nil
			case err := <-m.Err():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "default", "member name")
	f.StringVar(&cfg.DataDir, "data-dir", "", "member data directory")
	f.StringVar(&cfg.ClientURL, "listen-client-url", "http://127.0.0.1:2379", "client URL")
	f.StringVar(&cfg.PeerURL, "listen-peer-url", "http://127.0.0.1:2380", "peer URL")
	f.StringVar(&cfg.InitialCluster, "initial-cluster", "", "all members as name=peerURL,...")
	f.StringVar(&cfg.LogFile, "log-file", "", "where etcd logs")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// upstreamFlags is the global flag set as Kubernetes packages left it.
var upstreamFlags *pflag.FlagSet

// upstreamCmds run Kubernetes components that local clusters start as child
// processes of this binary; they keep their upstream flags.
func upstreamCmds() []*cobra.Command {
	wrap := func(name string, newCmd func() *cobra.Command) *cobra.Command {
		return &cobra.Command{
			Use:                name,
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(_ *cobra.Command, args []string) error {
				pflag.CommandLine = upstreamFlags
				c := newCmd()
				c.SetArgs(args)
				return c.Execute()
			},
		}
	}
	return []*cobra.Command{
		wrap("kube-apiserver", apiserver.NewAPIServerCommand),
		wrap("kube-controller-manager", kcm.NewControllerManagerCommand),
		wrap("kube-scheduler", func() *cobra.Command { return scheduler.NewSchedulerCommand() }),
		wrap("kubelet", func() *cobra.Command { return kubelet.NewKubeletCommand(signalContext()) }),
		wrap("kube-proxy", kubeproxy.NewProxyCommand),
	}
}

// runWithRealNodes runs cfg's cluster with real nodes beside its simulated
// ones: the supervisor of the local provider runs it from its data dir.
func runWithRealNodes(c *cobra.Command, cfg localcluster.Config, real int) error {
	if c.Flags().Changed("port") || cfg.NoBootstrapTokenAuth {
		return fmt.Errorf("--port and --no-bootstrap-token-auth are for clusters with simulated nodes only")
	}
	if err := realnode.Check(); err != nil {
		return err
	}
	v := kubebin.Embedded()
	nodes := localcluster.Nodes(cfg.Nodes, cfg.NodeCPU, cfg.NodeMemory, v)
	for i := range real {
		nodes = append(nodes, nodesim.Node{Name: fmt.Sprintf("%s-real-%d", cfg.Name, i+1), Index: cfg.Nodes + i + 1, Version: v, Real: true})
	}
	if err := localplane.WriteDesired(cfg.DataDir, localplane.Desired{Name: cfg.Name, ControlPlane: []string{v}, Nodes: nodes}); err != nil {
		return err
	}
	logToFile(filepath.Join(cfg.DataDir, "logs", "supervisor.log"))
	fmt.Fprintf(c.OutOrStdout(), "local cluster %s starting with %d real nodes; kubeconfig: %s; what runs: %s\n",
		cfg.Name, real, localplane.Kubeconfig(cfg.DataDir), filepath.Join(cfg.DataDir, "status.json"))
	return localplane.Run(signalContext(), cfg.DataDir)
}
