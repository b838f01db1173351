package localplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/images"
	"flotilla.dev/flotilla/internal/kubeapi"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/localcluster"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/realnode"
)

// tick is how often the supervisor compares what runs with what is desired.
const tick = 250 * time.Millisecond

// supervisor keeps one cluster's components running.
type supervisor struct {
	dir      *datadir.Dir
	pkiDir   string
	desired  Desired
	raw      []byte // desired, as last read
	etcd     []*component
	etcdArgs [][]string
	etcdURLs []string
	api      []*component
	apiArgs  [][]string
	servers  []*kubeapi.Server
	kcm      *component
	sched    *component
	agent    *component
	bins     *binaries
	lb       *balancer
	endpoint string
	admin    *rest.Config
	probe    *http.Client

	sim      *nodesim.Sim
	simNodes []byte // the nodes last set, as JSON

	// Real nodes: the cluster's node network (nil without real nodes),
	// the nodes by name, the sandbox image, and the port of the endpoint.
	net          *realnode.Network
	real         map[string]*realNode
	realReady    bool
	realFailure  string
	pause        string
	endpointPort int
	// The sandboxed runtime class: gVisor, built in the background the
	// first time, and whether the cluster offers it yet.
	sandbox        *sandboxBuild
	sandboxOffered bool
}

// Run supervises the cluster in dir until ctx ends, then stops everything
// it started.
func Run(ctx context.Context, dir string) error {
	d, err := datadir.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	s := &supervisor{dir: d, bins: newBinaries(ctx), real: map[string]*realNode{}, sandbox: &sandboxBuild{ctx: ctx}}
	if err := s.load(); err != nil {
		return err
	}
	// What keeps the cluster from starting (a port taken, say) is said in
	// the status, and tried again, rather than lost with the process.
	for {
		err := s.prepare()
		if err == nil {
			break
		}
		st := Status{PID: os.Getpid(), Components: []Component{{Name: "supervisor", Failed: true, Message: err.Error()}}}
		if werr := writeJSON(d.Join(statusFile), st); werr != nil {
			return werr
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
	defer s.stopAll()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := s.load(); err != nil {
			klog.ErrorS(err, "desired state unreadable; keeping the last one")
		}
		s.reconcile(ctx)
		if err := writeJSON(d.Join(statusFile), s.status()); err != nil {
			klog.ErrorS(err, "writing status")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// load reads the desired state if it changed.
func (s *supervisor) load() error {
	raw, err := os.ReadFile(s.dir.Join(desiredFile))
	if err != nil {
		return err
	}
	if bytes.Equal(raw, s.raw) {
		return nil
	}
	var d Desired
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", s.dir.Join(desiredFile), err)
	}
	if s.raw != nil && len(d.ControlPlane) != len(s.desired.ControlPlane) {
		return fmt.Errorf("the control plane has %d members and cannot change to %d", len(s.desired.ControlPlane), len(d.ControlPlane))
	}
	if len(d.ControlPlane) == 0 {
		return fmt.Errorf("%s names no control-plane member", s.dir.Join(desiredFile))
	}
	s.desired, s.raw = d, raw
	return nil
}

// prepare allocates ports, certificates and kubeconfigs, once.
func (s *supervisor) prepare() error {
	s.etcd, s.etcdArgs, s.etcdURLs, s.api, s.apiArgs, s.servers = nil, nil, nil, nil, nil, nil
	n := len(s.desired.ControlPlane)
	var err error
	if s.pkiDir, err = s.dir.Sub("pki"); err != nil {
		return err
	}
	if _, err := s.dir.Sub("logs"); err != nil {
		return err
	}
	var clientURLs, peers []string
	for i := range n {
		cp, err := s.dir.Port("etcd-client-"+strconv.Itoa(i), 0)
		if err != nil {
			return err
		}
		pp, err := s.dir.Port("etcd-peer-"+strconv.Itoa(i), 0)
		if err != nil {
			return err
		}
		clientURLs = append(clientURLs, fmt.Sprintf("http://127.0.0.1:%d", cp))
		peers = append(peers, fmt.Sprintf("%s=http://127.0.0.1:%d", memberName(i), pp))
	}
	s.etcdURLs = clientURLs
	addr, err := s.prepareNetwork()
	if err != nil {
		return err
	}
	if s.pause, err = images.Ref(images.Pause); err != nil {
		return err
	}
	for i := range n {
		c := &component{name: "etcd-" + strconv.Itoa(i), logFile: s.dir.Join("logs", "etcd-"+strconv.Itoa(i)+".log")}
		args := []string{"etcd", "--name=" + memberName(i), "--data-dir=" + s.dir.Join("etcd-"+strconv.Itoa(i)),
			"--listen-client-url=" + clientURLs[i], "--listen-peer-url=" + strings.SplitN(peers[i], "=", 2)[1], "--log-file=" + c.logFile}
		if n > 1 {
			args = append(args, "--initial-cluster="+strings.Join(peers, ","))
		}
		s.etcd = append(s.etcd, c)
		s.etcdArgs = append(s.etcdArgs, args)
	}
	for i := range n {
		port, err := s.dir.Port("apiserver-"+strconv.Itoa(i), 0)
		if err != nil {
			return err
		}
		cfg := kubeapi.Config{
			PKIDir:           s.pkiDir,
			Port:             port,
			Address:          addr,
			EtcdServers:      clientURLs,
			Authorization:    "RBAC",
			DisableAdmission: []string{"TaintNodesByCondition"},
			ExtraArgs:        []string{"--enable-bootstrap-token-auth=true"},
			ServiceCIDR:      "10.96.0.0/16",
		}
		if s.net != nil {
			cfg.Authorization = "Node,RBAC"
		}
		srv, args, err := kubeapi.Prepare(cfg)
		if err != nil {
			return err
		}
		if s.net != nil {
			kc, err := srv.CA.Client(s.pkiDir, "apiserver-kubelet-client", kubeletClientUser)
			if err != nil {
				return err
			}
			args = append(args, "--kubelet-client-certificate="+kc.CertFile, "--kubelet-client-key="+kc.KeyFile,
				"--kubelet-certificate-authority="+srv.CA.CertFile, "--kubelet-preferred-address-types=InternalIP")
		}
		s.servers = append(s.servers, srv)
		s.apiArgs = append(s.apiArgs, append([]string{"kube-apiserver"}, args...))
		s.api = append(s.api, &component{name: "kube-apiserver-" + strconv.Itoa(i), logFile: s.dir.Join("logs", "kube-apiserver-"+strconv.Itoa(i)+".log")})
	}
	s.endpoint = s.servers[0].URL
	s.endpointPort, _ = strconv.Atoi(s.endpoint[strings.LastIndex(s.endpoint, ":")+1:])
	if n > 1 {
		port, err := s.dir.Port("apiserver", 0)
		if err != nil {
			return err
		}
		host := "127.0.0.1"
		if addr != "" {
			host = addr
		}
		if s.lb, err = listenBalancer(host, port); err != nil {
			return err
		}
		s.endpoint, s.endpointPort = "https://"+net.JoinHostPort(host, strconv.Itoa(port)), port
	}
	// The components and the admin reach the cluster at its endpoint.
	front := *s.servers[0]
	front.URL = s.endpoint
	for _, who := range []string{"admin", "kube-controller-manager", "kube-scheduler"} {
		path := filepath.Join(s.pkiDir, who+".kubeconfig")
		if who == "admin" {
			path = Kubeconfig(s.dir.Path)
		}
		if err := front.WriteKubeconfig(path, s.desired.Name, who); err != nil {
			return err
		}
	}
	s.admin = rest.CopyConfig(s.servers[0].Admin)
	s.admin.Host = s.endpoint
	tlsCfg, err := rest.TLSConfigFor(s.servers[0].Admin)
	if err != nil {
		return err
	}
	s.probe = &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
	s.kcm = &component{name: "kube-controller-manager", logFile: s.dir.Join("logs", "kube-controller-manager.log")}
	s.sched = &component{name: "kube-scheduler", logFile: s.dir.Join("logs", "kube-scheduler.log")}
	s.agent = &component{name: "agent", logFile: s.dir.Join("logs", "agent.log")}
	return nil
}

func memberName(i int) string { return "m" + strconv.Itoa(i) }

// reconcile takes one step towards the desired state.
func (s *supervisor) reconcile(ctx context.Context) {
	now := time.Now()
	self, _ := procs.Self()
	for i, c := range s.etcd {
		c.reap(now)
		if !c.running() {
			args := s.etcdArgs[i]
			// etcd runs from this binary, whatever the Kubernetes version.
			c.start(now, "v"+etcdversion.Version, func() (*procs.Proc, error) { return procs.Start(c.name, self, args, c.logFile) })
		}
		c.ready = c.running() && s.healthy(s.etcdURLs[i]+"/health")
	}
	for i, c := range s.api {
		s.runAPIServer(ctx, now, i, c)
	}
	if s.lb != nil {
		var ready []string
		for i, c := range s.api {
			if c.ready {
				ready = append(ready, strings.TrimPrefix(s.servers[i].URL, "https://"))
			}
		}
		s.lb.setBackends(ready)
	}
	s.runControllers(ctx, now)
	s.runNodes(ctx)
	s.runRealNodes(ctx, now)
	s.runAgent(now, self)
}

// runAPIServer keeps member i's apiserver at its desired version: a member
// at another version is stopped, then started from the version's binary
// on the same etcd data.
func (s *supervisor) runAPIServer(ctx context.Context, now time.Time, i int, c *component) {
	want := s.desired.ControlPlane[i]
	c.reap(now)
	if c.running() && c.version != want {
		addr := strings.TrimPrefix(s.servers[i].URL, "https://")
		switch {
		case s.lb != nil && c.drainAt.IsZero():
			// Out of the balancer first, so that new connections go to
			// the other members before this one stops.
			klog.InfoS("upgrading control-plane member", "member", c.name, "from", c.version, "to", want)
			c.ready, c.drainAt = false, now.Add(time.Second)
			c.message = c.name + " is leaving the balancer to change version"
			s.lb.remove(addr)
		case now.After(c.drainAt):
			c.retire(now, 5*time.Second)
		}
		return
	}
	if !c.running() {
		bin := s.bins.get(want, c)
		if bin == "" {
			return
		}
		args := s.apiArgs[i]
		c.start(now, want, func() (*procs.Proc, error) { return procs.Start(c.name, bin, args, c.logFile) })
		return
	}
	c.ready = s.healthy(s.servers[i].URL + "/readyz")
	if !c.ready {
		c.message = c.name + " is starting"
	}
}

// runControllers runs the controller manager and scheduler at the oldest
// version of the control plane's members, once a member serves.
func (s *supervisor) runControllers(ctx context.Context, now time.Time) {
	want := slices.MinFunc(s.desired.ControlPlane, kubebin.Compare)
	serving := false
	for _, c := range s.api {
		serving = serving || c.ready
	}
	for _, c := range []*component{s.kcm, s.sched} {
		c.reap(now)
		if c.running() && c.version != want && s.allAt(want) {
			c.retire(now, 5*time.Second)
		}
		if c.running() || !serving {
			c.ready = c.running()
			continue
		}
		if !s.allAt(want) && c.version != "" {
			continue // wait for the members to finish
		}
		bin := s.bins.get(want, c)
		if bin == "" {
			continue
		}
		front := *s.servers[0]
		front.URL, front.Bin = s.endpoint, bin
		if c == s.kcm {
			controllers, extra := localcluster.Controllers, []string(nil)
			if s.net != nil {
				// Real nodes fail for real: their pods move when they do.
				controllers = slices.Concat(controllers, []string{"node-lifecycle-controller"})
				extra = []string{"--node-monitor-grace-period=20s"}
			}
			c.start(now, want, func() (*procs.Proc, error) {
				return front.StartControllerManager(s.desired.Name, c.logFile, controllers, extra...)
			})
		} else {
			c.start(now, want, func() (*procs.Proc, error) { return front.StartScheduler(s.desired.Name, c.logFile) })
		}
		c.ready = c.running()
	}
}

// allAt says whether every member runs version v.
func (s *supervisor) allAt(v string) bool {
	for _, c := range s.api {
		if !c.running() || c.version != v {
			return false
		}
	}
	return true
}

// runNodes keeps the simulated nodes as desired.
func (s *supervisor) runNodes(ctx context.Context) {
	if !s.serving() {
		return
	}
	if s.sim == nil {
		cs, err := kubernetes.NewForConfig(s.admin)
		if err != nil {
			return
		}
		s.sim = nodesim.New(cs)
		s.sim.Run(ctx)
		if s.net != nil {
			go s.sim.KeepLeases(ctx, 10*time.Second)
		}
	}
	sim := simulated(s.desired.Nodes)
	want, _ := json.Marshal(sim)
	if bytes.Equal(want, s.simNodes) {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.sim.Set(sctx, sim); err != nil {
		klog.ErrorS(err, "setting simulated nodes")
		return
	}
	s.simNodes = want
}

// runAgent keeps the cluster's agent running once it has its bootstrap.
func (s *supervisor) runAgent(now time.Time, self string) {
	s.agent.reap(now)
	if s.desired.AgentBootstrap == "" || s.agent.running() || !s.serving() {
		s.agent.ready = s.agent.running()
		return
	}
	args := append([]string{"agent",
		"--cluster-kubeconfig=" + Kubeconfig(s.dir.Path),
		"--bootstrap-kubeconfig=" + s.desired.AgentBootstrap,
		"--data-dir=" + s.dir.Join("agent"),
	}, s.desired.AgentArgs...)
	s.agent.start(now, "", func() (*procs.Proc, error) { return procs.Start("agent", self, args, s.agent.logFile) })
	s.agent.ready = s.agent.running()
}

func (s *supervisor) serving() bool {
	for _, c := range s.api {
		if c.ready {
			return true
		}
	}
	return false
}

// healthy says whether url answers 200.
func (s *supervisor) healthy(url string) bool {
	resp, err := s.probe.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *supervisor) status() Status {
	st := Status{PID: os.Getpid(), Endpoint: s.endpoint, NodesSet: s.simNodes != nil}
	for _, c := range s.etcd {
		st.Components = append(st.Components, c.status())
	}
	for _, c := range s.api {
		st.Components = append(st.Components, c.status())
	}
	for _, c := range []*component{s.kcm, s.sched} {
		st.Components = append(st.Components, c.status())
	}
	if s.desired.AgentBootstrap != "" {
		st.Components = append(st.Components, s.agent.status())
	}
	st.RealNodes = s.realStatus()
	return st
}

// stopAll stops the agent, the controllers, the apiservers, then etcd.
func (s *supervisor) stopAll() {
	// A kube-apiserver drains its watches for over 20 s after SIGTERM; a
	// cluster being stopped does not wait for that.
	for _, rn := range s.real {
		stopRealNode(rn)
	}
	if s.net != nil {
		if err := s.net.Down(); err != nil {
			klog.ErrorS(err, "removing the node network")
		}
	}
	procs.StopAll(3*time.Second, procsOf(s.agent, s.kcm, s.sched)...)
	procs.StopAll(3*time.Second, procsOf(s.api...)...)
	procs.StopAll(5*time.Second, procsOf(s.etcd...)...)
	if s.lb != nil {
		s.lb.close()
	}
}

func procsOf(cs ...*component) []*procs.Proc {
	var out []*procs.Proc
	for _, c := range cs {
		if c != nil && c.proc != nil {
			out = append(out, c.proc)
		}
	}
	return out
}
