// Package hub runs Flotilla's control plane: Flotilla's API served as
// CustomResourceDefinitions by a kube-apiserver (embedded with etcd by default,
// on an external etcd cluster, or an existing cluster used as host) and the
// hub's controllers in a leader-elected controller-runtime manager.
package hub

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/agentlimits"
	"flotilla.dev/flotilla/internal/backup/download"
	"flotilla.dev/flotilla/internal/clusterproxy"
	"flotilla.dev/flotilla/internal/controller"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/etcd"
	"flotilla.dev/flotilla/internal/gctune"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/kubeapi"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/policycheck"
	"flotilla.dev/flotilla/internal/sharedpki"
	"flotilla.dev/flotilla/internal/tunnel"
)

// SystemNamespace holds the hub's own objects (leader election, credentials).
const SystemNamespace = fv1.HubInfoNamespace

// Config describes a hub.
type Config struct {
	// DataDir keeps the hub's state: etcd data, certificates, admin.kubeconfig.
	DataDir string
	// Port of the embedded apiserver; 0 reuses the last one or picks a free port.
	Port int
	// EtcdServers, when set, replaces the embedded etcd with an external cluster.
	EtcdServers []string
	// Kubeconfig, when set, runs only CRDs and controllers on that cluster.
	Kubeconfig string
	// AgentAddress is the host agents reach the heartbeat endpoint at; default 127.0.0.1.
	AgentAddress string
	// AgentPort of the heartbeat endpoint; 0 reuses the last one or picks a free port.
	AgentPort int
	// AgentAdvertise, host:port, is where agents dial the heartbeat
	// endpoint when that is not where it listens: a load balancer, a NAT
	// or a proxy in front of the hub. Empty: AgentAddress and the port.
	AgentAdvertise string
	// AgentCertificateLifetime is the longest certificate the hub issues an
	// agent; 0 means controller.DefaultAgentCertificateLifetime.
	AgentCertificateLifetime time.Duration
	// MaxNamespacesPerCluster bounds the ClusterNamespaces one cluster's
	// agent may create; 0 means agentlimits.MaxNamespacesPerCluster.
	MaxNamespacesPerCluster int
	// AuthenticationConfig, if set, is a structured authentication
	// configuration file (apiserver.config.k8s.io AuthenticationConfiguration)
	// for the hub's apiserver: OIDC issuers users log in with.
	AuthenticationConfig string
	// AuditLogMaxSize is the size in megabytes at which the audit log
	// rotates; 0 means 100.
	AuditLogMaxSize int
	// MetricsBindAddress serves /metrics (Prometheus) there; "" means
	// DefaultMetricsBindAddress, "0" serves none.
	MetricsBindAddress string
	// OnReady, if set, is called once the component serves.
	OnReady func()
}

// Scheme knows Flotilla's and Kubernetes' built-in types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = fv1.AddToScheme(s)
	return s
}

// Run runs the hub until ctx ends.
func Run(ctx context.Context, c Config) error {
	if c.AgentCertificateLifetime == 0 {
		c.AgentCertificateLifetime = controller.DefaultAgentCertificateLifetime
	}
	// The signer issues nothing shorter.
	if c.AgentCertificateLifetime < 10*time.Minute {
		return fmt.Errorf("--agent-certificate-lifetime %s is too short: give at least 10m", c.AgentCertificateLifetime)
	}
	gctune.Set(gctune.HubStarting)
	dir, err := datadir.Open(c.DataDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var cfg *rest.Config
	var api *kubeapi.Server
	// The access point answers once the tunnels and caches it needs exist.
	access := &clusterproxy.Handler{}
	archives := &download.Handler{}
	apiErr := make(<-chan error)
	if c.Kubeconfig != "" {
		if cfg, err = kubeconfig.Load(c.Kubeconfig); err != nil {
			return fmt.Errorf("%v; point --kubeconfig at a working kubeconfig of the host cluster", err)
		}
		if err := checkReachable(ctx, cfg); err != nil {
			return fmt.Errorf("host cluster in %s cannot be reached: %v", c.Kubeconfig, err)
		}
		if err := checkHost(ctx, cfg, c.Kubeconfig); err != nil {
			return err
		}
		if _, err := InstallCRDs(ctx, cfg); err != nil {
			return err
		}
	} else {
		var stop func()
		api, stop, err = startControlPlane(ctx, dir, c, map[string]http.Handler{clusterproxy.Prefix: access, download.Prefix: archives})
		if err != nil {
			return err
		}
		defer stop()
		cfg, apiErr = api.Admin, api.Err()
		// Install CRDs while the apiserver finishes its post-start hooks: a new
		// CRD takes seconds before it accepts its first write.
		ready := make(chan error, 1)
		go func() { ready <- api.WaitReady(ctx) }()
		writable, err := InstallCRDs(ctx, cfg)
		if err != nil {
			return err
		}
		if err := <-ready; err != nil {
			return err
		}
		// Wait out the apiserver's hold on new CRDs rather than pay it whole.
		time.Sleep(time.Until(writable))
	}
	// A fixed mapper: discovery lags a freshly established CRD by seconds.
	cl, err := client.New(cfg, client.Options{Scheme: Scheme(), Mapper: bootstrapMapper()})
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, cl); err != nil {
		return err
	}
	klog.InfoS("bootstrap objects exist")

	tracker, hubInfo, listenAgents, err := agentEndpoint(ctx, dir, c, cl)
	if err != nil {
		return err
	}
	if err := listHub(ctx, cl, heartbeat.HubAddress{APIServer: cfg.Host, Stream: hubInfo[HubInfoHeartbeatURL]}); err != nil {
		return err
	}
	// No client-side throttling: a policy change writes every cluster's
	// desired state at once, and the apiserver's own limits apply.
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.QPS = -1
	// Hubs share state only through an external etcd or a host cluster.
	// With the embedded etcd the data dir's lock already makes this the only
	// hub, and it holds no lease: one that a saturated apiserver did not
	// renew in time would stop it for nothing (at 550 simulated clusters
	// registering on a busy machine, a renewal once waited past 10 s).
	shared := len(c.EtcdServers) > 0 || c.Kubeconfig != ""
	// A standby takes over within 9 s of the leader's last renewal, and
	// its agents follow within a heartbeat: the fleet is back within 15 s.
	// The price: a leader whose apiserver cannot renew within 6 s stops
	// (and is restarted by whatever runs it), also when it is alone.
	leaseDuration, renewDeadline, retryPeriod := 8*time.Second, 6*time.Second, time.Second
	// Each renewal on its own clock: a write the etcd leader had in flight
	// when it died waits out etcd's 7 s leader-failure timeout, and one
	// such renewal would take the whole deadline; the next, proposed
	// after etcd's election, goes through.
	leaseCfg := rest.CopyConfig(mgrCfg)
	leaseCfg.Timeout = 3 * time.Second
	metricsAddr, err := metricsAddress(dir, c.MetricsBindAddress)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                        Scheme(),
		Cache:                         cacheOptions(),
		LeaderElection:                shared,
		LeaderElectionID:              "flotilla-hub",
		LeaderElectionNamespace:       SystemNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaderElectionConfig:          leaseCfg,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr, ExtraHandlers: profiling()},
		HealthProbeBindAddress:        "0",
	})
	if err != nil {
		return err
	}
	tracker.Client = mgr.GetClient()
	tracker.LeaderElection = shared
	tracker.Tunnels = tunnel.NewHub(tracker.Changes.AskTunnel)
	events, stopEvents, err := eventRecorder(ctx, mgrCfg, mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	defer stopEvents()
	tracker.Events = events
	if err := exportMetrics(ctx, mgr, tracker); err != nil {
		return err
	}
	if api != nil {
		access.Serve(tracker.Tunnels, mgr.GetClient())
	} else {
		klog.InfoS("the access point (proxy.flotilla.dev) is served only by a hub with its own apiserver, not on a host cluster")
	}
	if err := controller.SetupAll(mgr, deliverPolicies(tracker.Changes), c.AgentCertificateLifetime, events); err != nil {
		return err
	}
	if err := notifyNamespaceChanges(ctx, mgr, tracker.Changes); err != nil {
		return err
	}
	if err := setupBackups(mgr, dir, tracker, archives); err != nil {
		return err
	}
	provisioned, err := setupLifecycle(mgr, dir, mgrCfg)
	if err != nil {
		return err
	}
	// Nothing the hub started outlives its Ctrl-C; a crashed hub's
	// clusters keep running and are found again.
	defer provisioned.StopAll()
	if err := mgr.Add(tracker); err != nil {
		return err
	}
	// Only the leader, whose tracker writes health, sends agents to itself.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return keepPublishing(ctx, cl, hubInfo) })); err != nil {
		return err
	}
	mgrErr := make(chan error, 1)
	go func() { mgrErr <- mgr.Start(ctx) }()
	// Agents are served once the hub's cache holds what their streams
	// read: served before, every stream waited for the cache in its
	// handler, and 10,000 agents reconnecting to a restarted hub kept its
	// start from finishing for minutes. Until then they are refused, which
	// costs neither side a handshake.
	if err := waitForCache(ctx, mgr, mgrErr); err != nil || ctx.Err() != nil {
		return err
	}
	gctune.Settle(gctune.Hub)
	serveAgents, err := listenAgents()
	if err != nil {
		return err
	}
	go func() {
		if err := serveAgents(); err != nil {
			mgrErr <- fmt.Errorf("agent endpoint: %v", err)
		}
	}()

	if err := dir.MarkReady(); err != nil {
		return err
	}
	if c.OnReady != nil {
		c.OnReady()
	}
	klog.InfoS("hub ready", "dataDir", dir.Path)

	// The hub's own controller manager (namespace deletion, signing
	// approved agent certificates) starts once the hub
	// serves: nothing before needs it, and its start would slow the hub's.
	var kcmDone <-chan struct{}
	if api != nil {
		// The signer caps every certificate at the hub's lifetime too,
		// whatever a request that reached it asked for.
		kcm, err := api.StartControllerManager("flotilla-hub", dir.Join("logs", "kube-controller-manager.log"), hubControllers,
			"--cluster-signing-duration="+c.AgentCertificateLifetime.String())
		if err != nil {
			return err
		}
		defer kcm.Stop(3 * time.Second)
		kcmDone = kcm.Done()
	}
	select {
	case <-kcmDone:
		return fmt.Errorf("the hub's kube-controller-manager exited; see %s", dir.Join("logs", "kube-controller-manager.log"))
	case <-ctx.Done():
		// The manager first, so it can release its lease while the apiserver serves.
		select {
		case <-mgrErr:
		case <-time.After(3 * time.Second):
		}
		return nil
	case err := <-mgrErr:
		return fmt.Errorf("controller manager stopped: %v", err)
	case err := <-apiErr:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	}
}

// startControlPlane starts etcd (unless external), kube-apiserver and the
// hub's controller manager, and writes admin.kubeconfig. stop shuts them down
// in reverse order.
func startControlPlane(ctx context.Context, dir *datadir.Dir, c Config, handlers map[string]http.Handler) (*kubeapi.Server, func(), error) {
	pkiDir, err := dir.Sub("pki")
	if err != nil {
		return nil, nil, err
	}
	if _, err := dir.Sub("logs"); err != nil {
		return nil, nil, err
	}
	extra, err := apiserverAccessArgs(dir, c)
	if err != nil {
		return nil, nil, err
	}
	port, err := dir.Port("apiserver", c.Port)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {}
	servers := c.EtcdServers
	if len(servers) == 0 {
		clientPort, err := dir.Port("etcd-client", 0)
		if err != nil {
			return nil, nil, err
		}
		peerPort, err := dir.Port("etcd-peer", 0)
		if err != nil {
			return nil, nil, err
		}
		member, err := etcd.Start(ctx, etcd.Config{
			Name:      "hub",
			DataDir:   dir.Join("etcd"),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", clientPort),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", peerPort),
			LogFile:   dir.Join("logs", "etcd.log"),
		})
		if err != nil {
			return nil, nil, err
		}
		stop = member.Close
		servers = []string{fmt.Sprintf("http://127.0.0.1:%d", clientPort)}
	} else if err := shareEtcd(ctx, servers, pkiDir); err != nil {
		return nil, nil, err
	}
	api, err := kubeapi.Start(ctx, kubeapi.Config{
		// Compacting etcd's history every minute rather than five keeps its
		// database (mapped into the hub's memory) near the live data: a
		// fleet registering writes each cluster's objects a dozen times.
		ExtraArgs:   append([]string{"--enable-bootstrap-token-auth=true", "--etcd-compaction-interval=1m"}, extra...),
		PKIDir:      pkiDir,
		Port:        port,
		StartedPath: "/version",
		EtcdServers: servers,
		EtcdPrefix:  "/flotilla/registry",
		// No watch cache: agents do not watch the hub, so each resource has
		// one or two watchers (the hub's own informers), and a cache would
		// hold a decoded copy of every object plus minutes of history, most
		// of the hub's memory per cluster.
		WatchCache: false,
		Admission: []kubeapi.AdmissionPlugin{
			{Name: policycheck.PluginName, Register: policycheck.Register},
			{Name: agentlimits.PluginName, Register: agentlimits.Register(c.MaxNamespacesPerCluster)},
		},
		Handlers: handlers,
		// Agents reach the apiserver where they reach the agent endpoint:
		// a non-loopback --agent-address (pods of real nodes, other hosts)
		// is where it serves and what its URL names.
		Address: publicAddress(c),
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	if err := api.WriteKubeconfig(dir.Join("admin.kubeconfig"), "flotilla-hub", "admin"); err != nil {
		stop()
		return nil, nil, err
	}
	stopEtcd := stop
	stop = func() {
		api.Stop(4 * time.Second)
		stopEtcd()
	}
	return api, stop, nil
}

// hubControllers are the kube-controller-manager controllers the hub runs.
// Flotilla sets no owner references on the hub, so it runs no garbage
// collector: that would keep metadata of every object in memory for nothing.
var hubControllers = []string{
	"namespace-controller",
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-cleaner-controller",
}

// shareEtcd fails fast when no quorum of the external etcd can be reached
// (the apiserver itself would retry silently for minutes), then takes the
// certificate authorities every hub on that etcd shares, or stores this
// hub's if it is the first.
func shareEtcd(ctx context.Context, servers []string, pkiDir string) error {
	unreachable := func(err error) error {
		return fmt.Errorf("cannot reach etcd at %s: %v; check --etcd-servers and that etcd runs", strings.Join(servers, ","), err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: servers, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return unreachable(err)
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Get(cctx, "/flotilla/health-probe"); err != nil {
		return unreachable(err)
	}
	return sharedpki.Sync(cctx, cli, pkiDir, func() error {
		if err := kubeapi.CreatePKI(pkiDir); err != nil {
			return err
		}
		_, err := heartbeatCA(pkiDir)
		return err
	})
}

func checkReachable(ctx context.Context, cfg *rest.Config) error {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 10 * time.Second
	cl, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	var ns corev1.NamespaceList
	return cl.List(ctx, &ns, client.Limit(1))
}

func bootstrapMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	m.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	m.Add(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), meta.RESTScopeRoot)
	m.Add(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"), meta.RESTScopeRoot)
	m.Add(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding"), meta.RESTScopeRoot)
	m.Add(rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), meta.RESTScopeRoot)
	m.Add(rbacv1.SchemeGroupVersion.WithKind("Role"), meta.RESTScopeNamespace)
	m.Add(rbacv1.SchemeGroupVersion.WithKind("RoleBinding"), meta.RESTScopeNamespace)
	for _, kind := range []string{"ClusterGroup", "Workspace", "BackupLocation"} {
		m.Add(fv1.GroupVersion.WithKind(kind), meta.RESTScopeRoot)
	}
	return m
}

// bootstrap creates what must always exist: the system namespace, the
// default cluster group, the default workspace and the default backup
// location (on the hub).
func bootstrap(ctx context.Context, cl client.Client) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}},
		&fv1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: fv1.DefaultName}, Spec: fv1.ClusterGroupSpec{Description: "Clusters that name no other group"}},
		&fv1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: fv1.DefaultName}, Spec: fv1.WorkspaceSpec{Description: "Namespaces that name no other workspace"}},
		&fv1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: fv1.DefaultLocation}, Spec: fv1.BackupLocationSpec{
			Type: fv1.LocationHub, AssignedTo: &fv1.LocationAssignment{Organization: true}}},
	}
	for _, o := range append(append(objs, guards()...), agentGuards()...) {
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return ensureAgentRBAC(ctx, cl)
}

// publicAddress is the address the hub's apiserver is reached at: the
// agent address when it is an IP that is not loopback, else 127.0.0.1.
func publicAddress(c Config) string {
	if ip := net.ParseIP(c.AgentAddress); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
		return c.AgentAddress
	}
	return "127.0.0.1"
}

// waitForCache waits until the manager's cache has synced, the manager
// stopped (its error is returned) or ctx ends (nil: the hub stops as
// asked).
func waitForCache(ctx context.Context, mgr ctrl.Manager, mgrErr chan error) error {
	synced := make(chan bool, 1)
	go func() { synced <- mgr.GetCache().WaitForCacheSync(ctx) }()
	select {
	case <-synced:
		return nil
	case err := <-mgrErr:
		return fmt.Errorf("controller manager stopped: %v", err)
	}
}
