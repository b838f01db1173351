// Package agent is Flotilla's agent: it runs beside (or inside) a member
// cluster and only ever dials out to the hub.
//
// Credential lifecycle: on first start the agent makes its own private key and
// registers with a single-use bootstrap token by submitting a CSR; the hub
// approves it for a pending attach of that cluster and the hub's signer issues
// a client certificate for user flotilla:cluster:NAME, saved in the data dir.
// Later starts reuse it. Before it expires (at 80 % of its life) the agent
// requests a new one with its current identity and swaps it in without a gap.
// Heartbeats start only once an identity is held.
package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backoff"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/failover"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/metrics"
	"flotilla.dev/flotilla/internal/version"
)

// Config describes an agent.
type Config struct {
	// ClusterKubeconfig reaches the member cluster; empty means in-cluster.
	ClusterKubeconfig string
	// BootstrapKubeconfig holds the single-use credential for first registration.
	BootstrapKubeconfig string
	// DataDir keeps the agent's key and, unless IdentitySecret is set, its
	// signed identity.
	DataDir string
	// IdentitySecret ("NAMESPACE/NAME") keeps the signed identity in a
	// Secret of the member cluster instead: a pod's disk does not outlive it.
	IdentitySecret string
	// Interval between heartbeats.
	Interval time.Duration
	// CertTTL is the lifetime asked for the agent's certificate (min 10m).
	CertTTL time.Duration
	// MetricsBindAddress serves /metrics there; empty serves none.
	MetricsBindAddress string
	// ReadOnly: the agent creates, changes and deletes nothing in its
	// cluster but its identity Secret: it applies no policy (each is
	// reported not enforced), creates no namespace, runs no backup or
	// restore, acts for no user and cleans nothing up on detach. The
	// manifest of 'cluster attach --read-only' sets it; the hub says so
	// too for a Cluster attached read-only, whatever the agent was told.
	ReadOnly bool
}

// NewConfig returns defaults.
func NewConfig() Config {
	return Config{Interval: heartbeat.DefaultInterval, CertTTL: 24 * time.Hour}
}

func (c Config) validate() error {
	if c.Interval < time.Second || c.Interval > heartbeat.MaxInterval {
		return fmt.Errorf("--heartbeat-interval %s is out of range: give 1s to %s", c.Interval, heartbeat.MaxInterval)
	}
	// The hub's signer issues nothing shorter.
	if c.CertTTL < 10*time.Minute {
		return fmt.Errorf("--certificate-ttl %s is too short: give at least 10m", c.CertTTL)
	}
	return nil
}

// agent is a running agent.
type agent struct {
	c     Config
	dir   *datadir.Dir
	store identityStore
	// server answers for the member cluster's apiserver (readyz, version,
	// discovery); dyn reads and writes the cluster's objects.
	server rest.Interface
	dyn    dynamic.Interface
	// clusterCfg reaches the member cluster; nil for simulated clusters,
	// whose objects are not checked for insights.
	clusterCfg *rest.Config

	// readOnly: the agent writes nothing in its cluster (Config.ReadOnly,
	// or the hub said the cluster is attached read-only).
	readOnly atomic.Bool

	mu  sync.RWMutex
	id  *identity
	tls tls.Certificate
	// hubRT reaches the hub's apiserver, or another hub's when it goes
	// away (the hubs listed in hub info).
	hubRT *failover.Transport
}

// Run runs the agent until ctx ends or the cluster is detached.
func Run(ctx context.Context, c Config) error {
	if err := serveMetrics(ctx, c.MetricsBindAddress); err != nil {
		return err
	}
	return RunWith(ctx, c, nil, nil)
}

// RunWith runs the agent for the cluster server and dyn reach instead of the
// one c.ClusterKubeconfig names; the fleet benchmark uses it to simulate many
// clusters in one process.
func RunWith(ctx context.Context, c Config, server rest.Interface, dyn dynamic.Interface) error {
	if err := c.validate(); err != nil {
		return err
	}
	open := datadir.Open
	if dyn != nil {
		open = datadir.OpenUnlocked // one of many simulated in this process
	}
	dir, err := open(c.DataDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	a := &agent{c: c, dir: dir, server: server, dyn: dyn}
	a.readOnly.Store(c.ReadOnly)
	if a.dyn == nil {
		clusterCfg, err := a.clusterConfig()
		if err != nil {
			return err
		}
		a.clusterCfg = clusterCfg
		if a.server, err = restClientFor(clusterCfg, corev1.SchemeGroupVersion); err != nil {
			return err
		}
		if a.dyn, err = dynamic.NewForConfig(clusterCfg); err != nil {
			return err
		}
	}
	a.store = fileStore{dir.Join("hub.kubeconfig")}
	if c.IdentitySecret != "" {
		if a.store, err = newSecretStore(a.dyn, c.IdentitySecret); err != nil {
			return err
		}
	}
	id, err := a.identity(ctx)
	if err != nil {
		return err
	}
	if err := a.use(id); err != nil {
		return err
	}
	klog.InfoS("agent registered", "cluster", id.Cluster, "certificateExpires", id.NotAfter)
	return a.loop(ctx)
}

func (a *agent) clusterConfig() (*rest.Config, error) {
	if a.c.ClusterKubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("not running in a cluster and no --cluster-kubeconfig given: %v", err)
		}
		memberLimits(cfg)
		return cfg, nil
	}
	cfg, err := kubeconfig.Load(a.c.ClusterKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%v; point --cluster-kubeconfig at the member cluster's kubeconfig", err)
	}
	cfg.Timeout = 10 * time.Second
	memberLimits(cfg)
	return cfg, nil
}

// identity returns the saved identity, or registers with the bootstrap
// credential, retrying with backoff while the hub is unreachable.
func (a *agent) identity(ctx context.Context) (*identity, error) {
	var saved []byte
	// The store may be the member cluster, which may be down for now.
	err := backoff.Until(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second}, func(ctx context.Context) (bool, error) {
		var err error
		if saved, err = a.store.load(ctx); err != nil {
			klog.InfoS("cannot read the saved identity; retrying", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if id, ok := decodeIdentity(saved); ok {
		return id, nil
	}
	if a.c.BootstrapKubeconfig == "" {
		return nil, fmt.Errorf("no saved identity in %s and no --bootstrap-kubeconfig to register with", a.store)
	}
	cfg, cluster, attach, err := bootstrapTarget(a.c.BootstrapKubeconfig)
	if err != nil {
		return nil, err
	}
	key, err := a.key()
	if err != nil {
		return nil, err
	}
	var id *identity
	delays := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second}
	// A token issued a moment ago may not be known to every apiserver yet:
	// take a rejection as final only after a short grace.
	graceEnds := time.Now().Add(15 * time.Second)
	err = backoff.Until(ctx, delays, func(ctx context.Context) (bool, error) {
		var err error
		id, err = requestIdentity(ctx, cfg, cluster, attach, key, a.c.CertTTL)
		var perm errPermanent
		if errors.As(err, &perm) && errors.Is(err, errTokenRejected) && time.Now().Before(graceEnds) {
			klog.InfoS("bootstrap credential not accepted yet; retrying", "err", err)
			return false, nil
		}
		if errors.As(err, &perm) {
			klog.ErrorS(err, "registration refused", "cluster", cluster)
			return false, err
		}
		if err != nil {
			klog.InfoS("hub not reachable for registration; retrying", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return id, a.save(ctx, id)
}

func (a *agent) save(ctx context.Context, id *identity) error {
	data, err := id.encode()
	if err != nil {
		return err
	}
	return a.store.save(ctx, data)
}

// key returns the agent's private key, made once and kept in the data dir.
func (a *agent) key() (*ecdsa.PrivateKey, error) {
	path := a.dir.Join("agent.key")
	if k, err := keyutil.PrivateKeyFromFile(path); err == nil {
		if s, ok := k.(*ecdsa.PrivateKey); ok {
			return s, nil
		}
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	pemBytes, err := keyutil.MarshalPrivateKeyToPEM(k)
	if err != nil {
		return nil, err
	}
	return k, os.WriteFile(path, pemBytes, 0o600)
}

// use switches to id for every later request.
func (a *agent) use(id *identity) error {
	cert, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.id, a.tls = id, cert
	a.mu.Unlock()
	return nil
}

func (a *agent) current() *identity {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.id
}

// loop heartbeats until ctx ends or the hub asks the agent to detach.
func (a *agent) loop(ctx context.Context) error {
	// What the loop starts ends with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hub, err := a.hubClient()
	if err != nil {
		return err
	}
	rt, url, err := a.heartbeatTransport(ctx, hub)
	if err != nil {
		return err
	}
	tun, err := newTunneler(ctx, a.clusterCfg, a.server, a.refuseUsers)
	if err != nil {
		return err
	}
	state := newHubState(hub)
	jr, err := newJobRunner(rt, url, a.clusterCfg, a.dyn, a.refuseJob)
	if err != nil {
		return err
	}
	state.onJobs = jr.poke
	go jr.run(ctx)
	out := newOutbox()
	view := memberView{nodes: nodeInformer(a.dyn), namespaces: namespaceInformer(a.dyn)}
	poke, err := a.startNamespaceSync(ctx, hub, state, view.namespaces)
	if err != nil {
		return err
	}
	go view.nodes.RunWithContext(ctx)
	go view.namespaces.RunWithContext(ctx)
	if view.pods, err = a.startPolicySync(ctx, out, state, view.namespaces); err != nil {
		return err
	}
	go state.run(ctx)
	var stream *heartbeat.Stream
	drop := func() {
		if stream != nil {
			stream.Close()
			stream = nil
		}
	}
	defer drop()
	retry := reconnectBackoff(a.c.Interval)
	open := func() error {
		if stream != nil {
			return nil
		}
		// The deadline bounds only the opening: the stream outlives it.
		dctx, cancel := context.WithTimeout(ctx, openTimeout)
		defer cancel()
		var err error
		if stream, err = heartbeat.DialWith(dctx, rt, url, heartbeat.Handlers{Change: state.heard, Multiplex: tun.multiplexer(), Desired: state.pushed}); err != nil {
			if errors.Is(err, heartbeat.ErrHubCertificate) || errors.Is(err, heartbeat.ErrAgentCertificate) {
				// Not a hub out of reach: said as what it is. Retried
				// still, as the hub may be mid-way through replacing
				// its certificates.
				klog.ErrorS(err, "the hub's agent endpoint and this agent do not trust each other; will retry", "hub", url)
			} else {
				klog.InfoS("cannot reach the hub; will retry", "hub", url, "err", err)
			}
		} else {
			metrics.StreamDialed()
			retry = reconnectBackoff(a.c.Interval)
		}
		return err
	}
	ready := false
	tick := time.NewTicker(a.c.Interval)
	defer tick.Stop()
	for {
		poke()
		if rotated, err := a.rotateIfDue(ctx); err != nil {
			klog.ErrorS(err, "certificate rotation failed; will retry")
		} else if rotated {
			// The hub knows the agent by the certificate its stream
			// was opened with: open the next with the new one.
			drop()
		}
		var resp heartbeat.Response
		if open() == nil {
			if resp, err = a.beat(ctx, stream, &view, out); err != nil {
				klog.InfoS("heartbeat failed; will retry", "err", err)
				drop()
			}
		}
		switch {
		case stream == nil:
		case resp.Detach:
			return a.detach(ctx, func(ctx context.Context) error {
				if err := open(); err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				resp, err := stream.Beat(ctx, heartbeat.Report{Detached: true, Cluster: a.current().Cluster})
				if err != nil {
					drop()
				} else if resp.Retry != "" {
					err = errors.New(resp.Retry)
				}
				return err
			})
		default: // the stream has passed the reply's token to state
			if !ready {
				ready = true
				if err := a.dir.MarkReady(); err != nil {
					return err
				}
				klog.InfoS("heartbeating", "hub", url, "interval", a.c.Interval)
			}
		}
		var ended <-chan struct{}
		next, wake := tick.C, out.wake
		if stream != nil {
			ended = stream.Done()
		} else {
			// Not connected: retry after a growing, jittered wait, so
			// that a fleet that lost its hub at one moment does not
			// come back at one moment.
			next, wake = time.After(retry.Step()), nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
		case <-wake: // a policy report to send
		case <-ended:
			// The hub closed the stream (it restarted, forgot the agent,
			// or a newer stream of this identity replaced it), or its
			// tunnel went idle: open a new one within seconds rather than
			// at the next tick.
			klog.InfoS("the stream ended; opening another", "reason", stream.Err())
			drop()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry.Step()):
			}
		}
	}
}

// openTimeout bounds opening a stream and a TLS handshake with the hub. A
// hub a whole fleet reconnects to at once works through thousands of
// handshakes: given up after 10 s and tried again, they were work the hub
// did for nothing, 60,000 times over at 10,000 clusters. A dead hub is
// found by the dial's own 5 s timeout.
const openTimeout = 30 * time.Second

// reconnectBackoff is how long an agent that reports every interval waits
// before opening its stream again: 1–2 s (less for intervals under 4 s),
// then twice as long after each failure, up to between half an interval and
// one, each wait drawn at random from its range. Agents that lost one hub at
// the same instant thus come back spread out instead of knocking at once on
// a hub that is starting, and one whose network heals is back within an
// interval: two heartbeats after the heal its cluster is Healthy again.
func reconnectBackoff(interval time.Duration) wait.Backoff {
	return wait.Backoff{Duration: min(time.Second, interval/4), Factor: 2, Jitter: 1, Steps: 8, Cap: interval / 2}
}

// hubClient asks the hub's apiserver nothing but for the objects: a fleet
// registering at once would otherwise ask it for its API groups once per agent.
func (a *agent) hubClient() (*hubClient, error) {
	cfg := a.hubConfig()
	cfg.Timeout = 15 * time.Second
	return newHubClient(cfg, a.current().Cluster)
}

func (a *agent) hubConfig() *rest.Config {
	id := a.current()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hubRT == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(id.CAData)
		// One transport for every hub client: HTTP/2 carries the agent's
		// requests over one connection. The agent talks to the apiserver
		// only when told something changed, so the connection closes soon
		// after: an idle fleet holds the hub's apiserver no connections.
		// Rotation swaps the certificate under it; pings find a dead one.
		rt := a.transport(pool)
		rt.IdleConnTimeout = 15 * time.Second
		a.hubRT = &failover.Transport{Base: rt}
		if len(id.Others) > 0 {
			a.hubRT.SetHosts(hostsOf(append([]string{id.Server}, id.Others...)))
		}
	}
	return &rest.Config{Host: id.Server, Transport: a.hubRT}
}

func (a *agent) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	c := a.tls
	return &c, nil
}

// memberLimits sets the agent's client-side rate limit towards its cluster.
// client-go's default (5 requests a second, bursts of 10) held a policy
// change behind the heartbeat's and the last change's requests for half a
// second; the cluster's apiserver guards itself (priority and fairness).
func memberLimits(cfg *rest.Config) {
	cfg.QPS, cfg.Burst = 50, 100
}

// heartbeatTransport reads where to open the heartbeat stream, once the hub
// has prepared the cluster's hub namespace for the agent.
func (a *agent) heartbeatTransport(ctx context.Context, hub *hubClient) (http.RoundTripper, string, error) {
	var cm *corev1.ConfigMap
	// A fleet attached at once waits here while the hub prepares each
	// cluster's namespace: the wait backs off rather than knock five
	// times a second.
	delays := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Cap: 2 * time.Second}
	err := backoff.Until(ctx, delays, func(ctx context.Context) (bool, error) {
		if err := hub.clusterNamespaces.List(ctx, &fv1.ClusterNamespaceList{}); err != nil {
			// What waiting cannot fix ends the wait, said as what it is.
			if e := explainHubError(err, a.hubConfig()); e != err {
				return false, e
			}
			klog.V(1).InfoS("waiting for the hub to prepare the cluster's namespace", "err", err)
			return false, nil
		}
		var err error
		if cm, err = hub.hubInfo.Get(ctx, fv1.HubInfoConfigMap, metav1.GetOptions{}); err != nil {
			if e := explainHubError(err, a.hubConfig()); e != err {
				return false, e
			}
			klog.V(1).InfoS("waiting for hub info", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cm.Data["heartbeatCA"]))
	// The stream is an upgraded HTTP/1.1 connection.
	rt := a.transport(pool)
	rt.Protocols = new(http.Protocols)
	rt.Protocols.SetHTTP1(true)
	url := cm.Data["heartbeatURL"]
	streams := &failover.Transport{Base: rt, Skip: heartbeat.IsStandby}
	if hubs := heartbeat.Hubs(cm.Data); len(hubs) > 1 {
		// Hubs on one storage: the leader serves streams, the others
		// send agents on; any apiserver serves the agent's requests.
		// The addresses the agent was given come first.
		streamURLs, others := []string{url}, []string{}
		for _, h := range hubs {
			streamURLs = append(streamURLs, h.Stream)
			if h.APIServer != a.current().Server {
				others = append(others, h.APIServer)
			}
		}
		streams.SetHosts(hostsOf(streamURLs))
		if err := a.rememberHubs(ctx, others); err != nil {
			return nil, "", err
		}
		klog.InfoS("hubs share this hub's storage: the agent fails over between them", "agentEndpoints", streams.Hosts(), "apiservers", a.hubRT.Hosts())
	}
	return streams, url, nil
}

// rememberHubs makes the hub client fail over to others too, and keeps
// them with the identity, so that an agent started while its hub is down
// finds another.
func (a *agent) rememberHubs(ctx context.Context, others []string) error {
	id := a.current()
	a.hubConfig() // makes hubRT
	a.hubRT.SetHosts(hostsOf(append([]string{id.Server}, others...)))
	if slices.Equal(id.Others, others) {
		return nil
	}
	next := *id
	next.Others = others
	if err := a.save(ctx, &next); err != nil {
		return err
	}
	a.mu.Lock()
	a.id = &next
	a.mu.Unlock()
	return nil
}

// hostsOf is the host:port of each URL.
func hostsOf(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = hostOf(u)
	}
	return out
}

// hostOf is u's host:port; "" if u is not a URL.
func hostOf(u string) string {
	p, err := neturl.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// transport reaches a hub endpoint that pool verifies with the agent's
// current certificate, through the proxy the environment names. HTTP/2
// carries the agent's apiserver requests over one connection; pings find a
// dead one, and small header tables keep it cheap for the hub.
func (a *agent) transport(pool *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		// A hub that drops packets fails the dial in seconds, so that an
		// agent that knows other hubs moves on within its request.
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: openTimeout,
		TLSClientConfig:     &tls.Config{RootCAs: pool, GetClientCertificate: a.clientCert, MinVersion: tls.VersionTLS12},
		HTTP2: &http.HTTP2Config{
			MaxDecoderHeaderTableSize: 512,
			MaxEncoderHeaderTableSize: 512,
			SendPingTimeout:           30 * time.Second,
			PingTimeout:               15 * time.Second,
		},
	}
}

// beat sends one report on stream, with the policy report out holds.
func (a *agent) beat(ctx context.Context, stream *heartbeat.Stream, view *memberView, out *outbox) (heartbeat.Response, error) {
	r := inventory(ctx, a.server, a.dyn, view)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.IntervalSeconds = int(a.c.Interval / time.Second)
	r.AgentVersion = version.Flotilla
	r.Cluster = a.current().Cluster
	r.Policies = out.next()
	sent := time.Now()
	resp, err := stream.Beat(ctx, r)
	metrics.HeartbeatReplied(sent, err)
	switch {
	case err != nil:
	case resp.Retry != "":
		klog.InfoS("the hub did not store the policy report; will send it again", "reason", resp.Retry)
	case resp.Refused != "":
		// Sending it again would be refused again: the next report
		// replaces it.
		klog.ErrorS(nil, "the hub refused to store what this agent reported", "reason", resp.Refused)
		if r.Policies != nil {
			out.stored(r.Policies)
		}
	case r.Policies != nil:
		out.stored(r.Policies)
	}
	return resp, err
}

// rotateIfDue renews the certificate once 80 % of its life has passed.
func (a *agent) rotateIfDue(ctx context.Context) (rotated bool, err error) {
	id := a.current()
	life := id.NotAfter.Sub(id.Issued)
	if time.Now().Before(id.Issued.Add(life * 8 / 10)) {
		return false, nil
	}
	key, err := newKey()
	if err != nil {
		return false, err
	}
	// Through whichever hub answers, with the current certificate.
	cfg := a.hubConfig()
	cfg.Timeout = 15 * time.Second
	// The renewal stays bound to the attach the current certificate is.
	next, err := requestIdentity(ctx, cfg, id.Cluster, id.Attach, key, a.c.CertTTL)
	if err != nil {
		return false, err
	}
	next.CAData, next.Others = id.CAData, id.Others
	if err := a.save(ctx, next); err != nil {
		return false, err
	}
	klog.InfoS("certificate rotated", "expires", next.NotAfter)
	return true, a.use(next)
}

// detach removes what Flotilla created in the cluster, reports it to the hub
// and forgets the identity.
func (a *agent) detach(ctx context.Context, tell func(context.Context) error) error {
	id := a.current()
	if a.readOnly.Load() {
		// It created nothing there, and may delete nothing: what runs it
		// (the manifest's objects) is for whoever applied them to remove.
		klog.InfoS("detach requested; the cluster is attached read-only, so the agent created nothing there and cleans up nothing: remove the agent's own objects yourself",
			"cluster", id.Cluster, "namespace", SystemNamespace, "clusterRoleAndBinding", fv1.ReadOnlyAgentRole)
	} else {
		klog.InfoS("detach requested; cleaning up", "cluster", id.Cluster)
		if err := cleanupCluster(ctx, a.dyn); err != nil {
			return fmt.Errorf("cleaning up the cluster: %w", err)
		}
	}
	// The hub finishes its side once told; until then the Cluster stays.
	delays := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second}
	err := backoff.Until(ctx, delays, func(ctx context.Context) (bool, error) {
		err := tell(ctx)
		if errors.Is(err, heartbeat.ErrNotAttached) {
			return true, nil // the hub has already forgotten the cluster
		}
		if err != nil {
			klog.InfoS("cannot tell the hub the cluster is cleaned up; will retry", "err", err)
		}
		return err == nil, nil
	})
	if err != nil {
		return err
	}
	if err := a.store.remove(ctx); err != nil {
		klog.ErrorS(err, "forgetting the identity", "store", a.store)
	}
	os.Remove(filepath.Join(a.dir.Path, "agent.key"))
	klog.InfoS("detached", "cluster", id.Cluster)
	if !a.readOnly.Load() {
		if err := removeSelf(ctx, a.dyn); err != nil {
			klog.ErrorS(err, "removing the agent's namespace and binding")
		}
	}
	return nil
}
