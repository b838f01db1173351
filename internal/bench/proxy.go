package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
)

// ProxyOptions say what bench proxy measures.
type ProxyOptions struct {
	Pods     int           // pods `kubectl get pods` lists
	Requests int           // requests in each latency series
	Clients  int           // concurrent clients in the throughput window
	Duration time.Duration // the throughput window, per path
	Tunnels  int           // simulated clusters for the memory per idle tunnel; 0 skips it
	DataDir  string        // a new or empty dir for the hub's and clusters' data, kept; empty: a temporary dir, removed after
}

// Proxy measures the hub's access point against a cluster's own apiserver:
// it starts a hub and a local cluster holding o.Pods pods, attaches the
// cluster with an agent process, and makes the same requests direct (the
// cluster's admin, to its apiserver) and through the hub (the hub's admin,
// to fv1.ProxyPath): kubectl's list of pods, a single get, a watch's event
// latency and the requests/s of concurrent clients. Then it runs o.Tunnels
// simulated clusters in this process, opens every one's tunnel and measures
// the hub's memory per idle tunnel. It prints numbers and asserts nothing.
func Proxy(ctx context.Context, out, progress io.Writer, o ProxyOptions) error {
	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "flotilla-bench-proxy-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		// A second run's clusters would find the first's pods.
		return fmt.Errorf("--data-dir %s is not empty", dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	quietLogs()
	r := &proxyRun{o: o, dir: dir, res: proxyResult{pods: o.Pods, clients: o.Clients, window: o.Duration}}
	r.logf = func(format string, args ...any) {
		fmt.Fprintf(progress, "  %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	defer r.stop()

	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"start a hub and a local cluster", r.start},
		{"attach the cluster with an agent", r.attach},
		{fmt.Sprintf("create %d pods", o.Pods), r.createPods},
		{"kubectl get pods", r.measureList},
		{"get one pod", r.measureGet},
		{"watch events", r.measureWatch},
		{"throughput", r.measureThroughput},
		{"idle tunnels", r.measureTunnels},
	}
	start := time.Now()
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.logf("%s", s.name)
		if err := s.run(ctx); err != nil {
			printProxy(out, &r.res)
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	r.res.took = time.Since(start)
	printProxy(out, &r.res)
	return nil
}

// proxyRun is one run's processes and clients.
type proxyRun struct {
	o    ProxyOptions
	dir  string
	logf func(string, ...any)
	res  proxyResult

	lf    *localFleet
	agent *procs.Proc
	// The same cluster reached two ways: [direct] its apiserver as its
	// admin, [viaHub] the hub's access point as the hub's admin.
	clients [2]*kubernetes.Clientset
	hub     *kubernetes.Clientset // the hub's own API, as its admin
	// stopSims stops the simulated clusters' agents and waits for them.
	stopSims func()
}

const (
	direct = iota
	viaHub
)

// proxyCluster is the local cluster's name on the hub; startLocal names
// its first cluster so.
const proxyCluster = "c0"

func (r *proxyRun) start(context.Context) error {
	// Nodes of 100 pods each, as a kubelet would hold them.
	nodes := max(1, (r.o.Pods+99)/100)
	var err error
	if r.lf, err = startLocal(r.dir, 1, nodes); err != nil {
		return err
	}
	r.logf("hub (pid %d) and cluster %s (%d simulated nodes) ready", r.lf.procs[0].PID(), proxyCluster, nodes)
	return nil
}

func (r *proxyRun) attach(ctx context.Context) error {
	memberKubeconfig := filepath.Join(r.lf.clusterDirs[0], "kubeconfig")
	var err error
	if r.agent, err = startAgent(ctx, r.lf.cl, r.lf.cfg, r.dir, proxyCluster, memberKubeconfig, ""); err != nil {
		return err
	}
	if err := untilCluster(ctx, r.lf.cl, 2*time.Minute, func(c *fv1.Cluster) bool { return c.Status.Health == fv1.HealthHealthy }); err != nil {
		return fmt.Errorf("cluster not Healthy: %w", err)
	}
	member, err := kubeconfig.Load(memberKubeconfig)
	if err != nil {
		return err
	}
	// Latency is the servers', not client-side throttling's.
	member.QPS = -1
	through := rest.CopyConfig(r.lf.cfg)
	through.Host += fv1.ProxyPath(proxyCluster)
	if r.clients[direct], err = kubernetes.NewForConfig(member); err != nil {
		return err
	}
	if r.clients[viaHub], err = kubernetes.NewForConfig(through); err != nil {
		return err
	}
	r.hub, err = kubernetes.NewForConfig(r.lf.cfg)
	return err
}

func (r *proxyRun) measureTunnels(ctx context.Context) error {
	if r.o.Tunnels == 0 {
		return nil
	}
	agentLog, err := os.Create(filepath.Join(r.dir, "sim-agents.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	klog.SetOutput(agentLog)
	defer klog.SetOutput(io.Discard)
	f, err := newFleet(r.o.Tunnels)
	if err != nil {
		return err
	}
	simCtx, cancel := context.WithCancel(ctx)
	r.stopSims = func() {
		cancel()
		waitTimeout(&f.agents, 30*time.Second)
	}
	if _, err := f.watch(simCtx, r.lf.cfg); err != nil {
		return err
	}
	start := time.Now()
	f.attachAll(simCtx, r.lf.cl, r.lf.cfg, filepath.Join(r.dir, "sims"), 50)
	note, err := f.waitHealthy(ctx, r.lf.procs[0], filepath.Join(r.dir, "hub"), start, r.logf)
	if err != nil {
		return err
	}
	if note != "" {
		return fmt.Errorf("%s (attach errors %d, agent exits %d, first error: %v)", note, f.attachErrs.Load(), f.agentErrs.Load(), f.firstErr.Load())
	}
	r.res.registered = time.Since(start)
	r.logf("%d simulated clusters Healthy in %.0fs", r.o.Tunnels, r.res.registered.Seconds())
	return r.tunnelMemory(ctx, f)
}

// stop stops what the run started, by PID, the hub last.
func (r *proxyRun) stop() {
	if r.stopSims != nil {
		r.stopSims()
	}
	if r.agent != nil {
		r.agent.Stop(5 * time.Second)
	}
	if r.lf != nil {
		r.lf.stop()
	}
}
