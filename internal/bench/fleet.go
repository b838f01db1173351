package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	fakedynamic "k8s.io/client-go/dynamic/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/agent"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/policy"
	"flotilla.dev/flotilla/internal/procs"
)

// FleetOptions configure the fleet benchmark.
type FleetOptions struct {
	// Clusters lists the fleet sizes; each is measured against a fresh hub.
	Clusters []int
	// Window is the steady-state window CPU, memory and latency are measured over.
	Window time.Duration
	// Concurrency bounds the registrations in flight.
	Concurrency int
	// Probes is how many clusters change their inventory during the window.
	Probes int
	// Keep leaves the data dirs and logs in place and prints where.
	Keep bool
	// RestartHub kills the hub (SIGKILL) right after a policy change, once
	// the rest is measured, starts it again and times the fleet's return.
	RestartHub bool
	// Profile, if set, is a directory for CPU profiles of this process and
	// the hub during the policy fan-out and the fleet's return to a
	// restarted hub.
	Profile string
}

// Fleet measures one real hub serving N simulated clusters for each N in
// o.Clusters. The agents are real (bootstrap-token CSR registration, mTLS
// heartbeats every heartbeat.DefaultInterval) and run as goroutines in this
// process; only their member clusters are fakes. It prints a table to out
// and progress to progress; it asserts nothing.
func Fleet(ctx context.Context, out, progress io.Writer, o FleetOptions) error {
	self, err := procs.Self()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flotilla-fleet-")
	if err != nil {
		return err
	}
	keep := o.Keep
	defer func() {
		if keep {
			fmt.Fprintf(progress, "data dirs and logs kept in %s\n", tmp)
		} else {
			os.RemoveAll(tmp)
		}
	}()
	quietLogs()

	var results []*fleetResult
	var runErr error
	for _, n := range o.Clusters {
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		fmt.Fprintf(progress, "== %d clusters\n", n)
		dir := filepath.Join(tmp, strconv.Itoa(n))
		r, err := runFleet(ctx, self, dir, n, o, progress)
		// A failed run's logs are what explains it: keep them.
		keep = keep || err != nil
		if !keep {
			os.RemoveAll(dir)
		}
		if r != nil {
			results = append(results, r)
		}
		if err != nil {
			runErr = fmt.Errorf("%d clusters: %w", n, err)
			break
		}
	}
	printFleet(out, results)
	return runErr
}

// quietLogs sends the agents' (and client libraries') logs to whatever
// klog.SetOutput names instead of stderr: N agents would flood the terminal.
func quietLogs() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	_ = fs.Set("one_output", "true")
	klog.SetOutput(io.Discard)
	ctrllog.SetLogger(klog.NewKlogr())
}

// fleetResult is what one fleet size measured.
type fleetResult struct {
	n, healthy   int
	registerAll  time.Duration // first attach to last cluster Healthy
	attach       []time.Duration
	phases       [4][]time.Duration // attach calls, to CSR submitted, to certificate, to Healthy
	restarts     int                // agents restarted after exiting with an error
	regCPU       float64            // hub millicores while registering
	idle, loaded procs.Memory
	// The hub's process alone, without its children (the controller manager).
	idleHub, loadedHub procs.Memory
	// The hub's Go heap at idle and in the window.
	idleHeap, loadedHeap goHeap
	hubCPU               float64 // millicores over the window
	benchCPU             float64
	benchRSS             int64
	total, sent          []time.Duration // heartbeat→status: from the change, from the agent reading it
	policy               []time.Duration // policy create → applied, per cluster
	fanoutCPU            float64         // hub CPU seconds from the policy's create to the last apply
	restart              *restartResult  // with FleetOptions.RestartHub
	probes               int
	notHealthy           int // clusters not Healthy at the end of the window
	note                 string
}

// simCluster is one simulated member cluster and what the bench saw of it.
type simCluster struct {
	name     string
	dyn      *fakedynamic.FakeDynamicClient // the cluster's objects
	basePods int32
	healthy  chan struct{} // closed once the hub reports it Healthy

	// Guarded by fleet.mu.
	attached, healthyAt time.Time
	attachDone, csrAt   time.Time
	registeredAt        time.Time
	probe               *probe
	applied             map[string]time.Time // by binding name: when the agent first applied it
	health              fv1.Health           // as the hub's Cluster status last said
}

// probe is one inventory change and when each step noticed it.
type probe struct {
	want                  int32 // pods the hub should report
	changed, read, seenAt time.Time
}

// fleet is one run's shared state: simulated clusters whose agents run in
// this process against one hub, and what the bench saw of them.
type fleet struct {
	mu          sync.Mutex
	sims        []*simCluster
	byName      map[string]*simCluster
	nHealthy    int
	lastHealthy time.Time
	server      *rest.RESTClient // answers for every simulated apiserver

	agents                          sync.WaitGroup
	attachErrs, agentErrs, restarts atomic.Int32
	firstErr                        atomic.Value // string
}

// newFleet returns n simulated clusters, sim-00000 on, none attached yet.
func newFleet(n int) (*fleet, error) {
	server, err := newSimServer()
	if err != nil {
		return nil, err
	}
	tmpl, pods, err := simObjects()
	if err != nil {
		return nil, err
	}
	f := &fleet{byName: make(map[string]*simCluster, n), server: server}
	for i := range n {
		s := &simCluster{name: fmt.Sprintf("sim-%05d", i), healthy: make(chan struct{}), basePods: pods}
		s.dyn = newSimDynamic(f, s, tmpl)
		f.sims = append(f.sims, s)
		f.byName[s.name] = s
	}
	return f, nil
}

// observe is called for every Cluster event from the hub's watch.
func (f *fleet) observe(obj any) {
	c, ok := obj.(*fv1.Cluster)
	if !ok {
		return
	}
	s := f.byName[c.Name]
	if s == nil {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s.health = c.Status.Health
	if c.Status.Health == fv1.HealthHealthy && s.healthyAt.IsZero() && !s.attached.IsZero() {
		s.healthyAt = now
		f.nHealthy++
		f.lastHealthy = now
		close(s.healthy)
	}
	if p := s.probe; p != nil && !p.changed.IsZero() && p.seenAt.IsZero() && c.Status.Pods == p.want {
		p.seenAt = now
	}
}

// watch starts a cache of the hub's Clusters that tells when each turns
// Healthy and when its pod count changes, without the load of listing N
// clusters every few ms. It runs until ctx ends.
func (f *fleet) watch(ctx context.Context, cfg *rest.Config) (cache.Cache, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: hub.Scheme()})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &fv1.Cluster{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    f.observe,
		UpdateFunc: func(_, obj any) { f.observe(obj) },
	}); err != nil {
		return nil, err
	}
	go c.Start(ctx)
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("watching clusters on the hub did not start")
	}
	return c, nil
}

// attachAll attaches every simulated cluster to the hub cl and cfg reach,
// concurrency at a time, and runs its agent (files under dir) until ctx
// ends; f.agents counts the agents running. It returns at once.
func (f *fleet) attachAll(ctx context.Context, cl client.Client, cfg *rest.Config, dir string, concurrency int) {
	// The fake clients record every call; forget them so memory stays flat.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			for _, s := range f.sims {
				s.dyn.ClearActions()
			}
		}
	}()
	fail := func(counter *atomic.Int32, err error) {
		counter.Add(1)
		f.firstErr.CompareAndSwap(nil, err.Error())
	}
	sem := make(chan struct{}, concurrency)
	go func() {
		for _, s := range f.sims {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				// The slot is held until the cluster is Healthy, so at most
				// concurrency registrations are in flight.
				defer func() { <-sem }()
				f.mu.Lock()
				s.attached = time.Now()
				f.mu.Unlock()
				boot, err := attach.Attach(ctx, cl, cfg, attach.Options{Name: s.name})
				if err != nil {
					fail(&f.attachErrs, fmt.Errorf("attach %s: %w", s.name, err))
					return
				}
				f.mu.Lock()
				s.attachDone = time.Now()
				f.mu.Unlock()
				ac := agent.NewConfig()
				ac.DataDir = filepath.Join(dir, "agents", s.name)
				ac.BootstrapKubeconfig = filepath.Join(dir, "agents", s.name+".bootstrap.kubeconfig")
				if err := os.MkdirAll(filepath.Dir(ac.BootstrapKubeconfig), 0o700); err != nil {
					fail(&f.attachErrs, err)
					return
				}
				if err := os.WriteFile(ac.BootstrapKubeconfig, boot, 0o600); err != nil {
					fail(&f.attachErrs, err)
					return
				}
				f.agents.Add(1)
				go func() {
					defer f.agents.Done()
					// An agent that exits with an error is restarted with the
					// kubelet's crash-loop backoff, as its Deployment would be.
					backoff := 10 * time.Second
					for {
						err := agent.RunWith(ctx, ac, f.server, s.dyn)
						if err == nil || ctx.Err() != nil {
							return
						}
						fail(&f.agentErrs, fmt.Errorf("agent %s: %w", s.name, err))
						f.restarts.Add(1)
						select {
						case <-ctx.Done():
							return
						case <-time.After(backoff):
						}
						backoff = min(2*backoff, 5*time.Minute)
					}
				}()
				select {
				case <-s.healthy:
				case <-ctx.Done():
				case <-time.After(2 * time.Minute):
				}
			}()
		}
	}()
}

// waitHealthy waits until every simulated cluster attached since start is
// Healthy (note is empty), or none has turned Healthy for 2 minutes (note
// says so). It fails if ctx ends or the hub exits.
func (f *fleet) waitHealthy(ctx context.Context, hubProc *procs.Proc, hubDir string, start time.Time, logf func(string, ...any)) (note string, err error) {
	n := len(f.sims)
	lastProgress, lastCount := time.Now(), 0
	nextReport := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		h := f.nHealthy
		f.mu.Unlock()
		if h == n {
			return "", nil
		}
		if h != lastCount {
			lastProgress, lastCount = time.Now(), h
		}
		if time.Since(lastProgress) > 2*time.Minute {
			return fmt.Sprintf("registration stalled at %d/%d Healthy", h, n), nil
		}
		if time.Now().After(nextReport) {
			logf("%d/%d Healthy after %.0fs", h, n, time.Since(start).Seconds())
			nextReport = time.Now().Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-hubProc.Done():
			return "", fmt.Errorf("hub exited during registration: %v; see %s", hubProc.Err(), filepath.Join(hubDir, "logs", "hub.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runFleet(ctx context.Context, self, dir string, n int, o FleetOptions, progress io.Writer) (res *fleetResult, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf := progressLog(progress)
	f, err := newFleet(n)
	if err != nil {
		return nil, err
	}
	agentLog, err := os.Create(filepath.Join(dir, "agents.log"))
	if err != nil {
		return nil, err
	}
	defer agentLog.Close()
	klog.SetOutput(&phaseLog{w: agentLog, f: f})
	defer klog.SetOutput(io.Discard)

	hubDir := filepath.Join(dir, "hub")
	startHub := func() (*procs.Proc, error) {
		p, err := procs.Start("hub", self, []string{"hub", "--data-dir", hubDir}, filepath.Join(dir, "hub.out"))
		if err != nil {
			return nil, err
		}
		if err := p.WaitReady(hubDir, 2*time.Minute); err != nil {
			p.Stop(15 * time.Second)
			return nil, err
		}
		return p, nil
	}
	hubProc, err := startHub()
	if err != nil {
		return nil, err
	}
	// Stop the hub by PID whatever happens (the one running, after a restart).
	defer func() {
		if hubProc != nil {
			hubProc.Stop(15 * time.Second)
		}
		logf("hub stopped")
	}()
	hubPID := hubProc.PID()
	cfg, err := kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	// The bench is one client doing the work of many; no client-side throttling.
	cfg.QPS, cfg.Burst = 1000, 2000
	cl, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return nil, err
	}

	// The fresh hub's memory, once start-up allocations have settled.
	time.Sleep(5 * time.Second)
	res = &fleetResult{n: n}
	if res.idle, err = procs.TreeMemory(hubPID); err != nil {
		return nil, err
	}
	res.idleHub, _ = procs.ProcessMemory(hubPID)
	res.idleHeap = hubHeap(hubDir)
	logf("hub ready (pid %d), idle PSS %.0f MiB, Go heap live %.0f MiB", hubPID, mib(res.idle.PSS), mib(res.idleHeap.Live))

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	clusterCache, err := f.watch(watchCtx, cfg)
	if err != nil {
		return nil, err
	}

	agentsCtx, stopAgents := context.WithCancel(ctx)
	defer func() {
		stopAgents()
		waitTimeout(&f.agents, 30*time.Second)
		logf("agents stopped")
	}()
	start, regTicks := time.Now(), treeTicks(hubPID)
	logf("attaching %d clusters, %d at a time", n, o.Concurrency)
	f.attachAll(agentsCtx, cl, cfg, dir, o.Concurrency)
	if res.note, err = f.waitHealthy(ctx, hubProc, hubDir, start, logf); err != nil {
		return res, err
	}
	f.mu.Lock()
	res.healthy = f.nHealthy
	res.registerAll = f.lastHealthy.Sub(start)
	res.regCPU = float64(treeTicks(hubPID)-regTicks) / clockTicks / time.Since(start).Seconds() * 1000
	res.restarts = int(f.restarts.Load())
	for _, s := range f.sims {
		if s.healthyAt.IsZero() {
			continue
		}
		res.attach = append(res.attach, s.healthyAt.Sub(s.attached))
		if s.csrAt.IsZero() || s.registeredAt.IsZero() {
			continue
		}
		for i, d := range []time.Duration{s.attachDone.Sub(s.attached), s.csrAt.Sub(s.attachDone),
			s.registeredAt.Sub(s.csrAt), s.healthyAt.Sub(s.registeredAt)} {
			res.phases[i] = append(res.phases[i], d)
		}
	}
	f.mu.Unlock()
	sortDurations(res.attach)
	for _, p := range res.phases {
		sortDurations(p)
	}
	logf("%d/%d Healthy in %.1fs (attach errors %d, agent exits %d); hub CPU while registering %.0f mCPU",
		res.healthy, n, res.registerAll.Seconds(), f.attachErrs.Load(), f.agentErrs.Load(), res.regCPU)
	if e, ok := f.firstErr.Load().(string); ok {
		logf("first error: %s", e)
	}
	if res.healthy == 0 {
		summarizeLog(logf, "hub", filepath.Join(hubDir, "logs", "hub.log"))
		return res, fmt.Errorf("no cluster turned Healthy")
	}

	// The hub keeps working off registration for a while after the last
	// cluster turns Healthy (queued reconciles). The window opens once its CPU
	// use levels off: two heartbeat intervals in a row within 20 % of each
	// other, or after 3 minutes.
	prev := -1.0
	for settleEnd := time.Now().Add(3 * time.Minute); time.Now().Before(settleEnd); {
		t, ticks := time.Now(), treeTicks(hubPID)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(heartbeat.DefaultInterval):
		}
		cur := float64(treeTicks(hubPID)-ticks) / clockTicks / time.Since(t).Seconds() * 1000
		logf("settling: hub CPU %.0f mCPU", cur)
		if prev >= 0 && math.Abs(cur-prev) <= max(0.2*prev, 20) {
			break
		}
		prev = cur
	}

	logf("steady-state window of %s", o.Window)
	hubTicks0, selfTicks0, t0 := treeTicks(hubPID), treeTicks(os.Getpid())-treeTicks(hubPID), time.Now()
	// Probe clusters spread over the fleet, not only the first attached.
	var probed []*simCluster
	f.mu.Lock()
	for i, s := range f.sims {
		if !s.healthyAt.IsZero() && len(probed) < o.Probes && i%max(1, res.healthy/max(1, o.Probes)) == 0 {
			probed = append(probed, s)
		}
	}
	f.mu.Unlock()
	res.probes = len(probed)
	for j, s := range probed {
		// Spread the changes evenly over the window.
		if d := time.Until(t0.Add(o.Window * time.Duration(j) / time.Duration(len(probed)))); d > 0 {
			time.Sleep(d)
		}
		f.mu.Lock()
		s.probe = &probe{want: s.basePods + 1}
		f.mu.Unlock()
		pod, err := toUnstructured(simPod("default", "probe", "probe-0"))
		if err != nil {
			return res, err
		}
		if _, err := s.dyn.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return res, err
		}
	}
	if d := time.Until(t0.Add(o.Window)); d > 0 {
		time.Sleep(d)
	}
	elapsed := time.Since(t0).Seconds()
	hubTicks1 := treeTicks(hubPID)
	selfTicks1 := treeTicks(os.Getpid()) - hubTicks1
	res.hubCPU = float64(hubTicks1-hubTicks0) / clockTicks / elapsed * 1000
	res.benchCPU = float64(selfTicks1-selfTicks0) / clockTicks / elapsed * 1000
	if res.loaded, err = procs.TreeMemory(hubPID); err != nil {
		return res, err
	}
	res.loadedHub, _ = procs.ProcessMemory(hubPID)
	res.loadedHeap = hubHeap(hubDir)
	res.benchRSS = selfRSS()
	var list fv1.ClusterList
	if err := clusterCache.List(ctx, &list); err == nil {
		for _, c := range list.Items {
			if c.Status.Health != fv1.HealthHealthy {
				res.notHealthy++
			}
		}
	}
	logf("window done: hub PSS %.0f MiB, RSS %.0f MiB, CPU %.0f mCPU; %d clusters not Healthy",
		mib(res.loaded.PSS), mib(res.loaded.RSS), res.hubCPU, res.notHealthy)

	// The last changes need up to one more heartbeat to show.
	deadline := time.Now().Add(2*heartbeat.DefaultInterval + 5*time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		done := true
		for _, s := range probed {
			done = done && !s.probe.seenAt.IsZero()
		}
		f.mu.Unlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.mu.Lock()
	for _, s := range probed {
		p := s.probe
		if p.seenAt.IsZero() || p.changed.IsZero() {
			continue
		}
		res.total = append(res.total, p.seenAt.Sub(p.changed))
		if !p.read.IsZero() {
			res.sent = append(res.sent, p.seenAt.Sub(p.read))
		}
	}
	f.mu.Unlock()
	sortDurations(res.total)
	sortDurations(res.sent)
	if len(res.total) < res.probes {
		logf("%d of %d inventory changes never showed in the hub's status", res.probes-len(res.total), res.probes)
	}
	stopProfile, err := cpuProfiles(o.Profile, hubDir, "fanout", 10*time.Second)
	if err != nil {
		return res, err
	}
	err = measurePolicy(ctx, cl, hubPID, f, f.sims, res, logf)
	if where := stopProfile(); where != "" {
		logf("%s", where)
	}
	if err != nil {
		return res, err
	}
	if o.RestartHub {
		if hubProc, res.restart, err = measureRestart(ctx, cl, f, hubProc, hubDir, startHub, res.healthy, o.Profile, logf); err != nil {
			return res, err
		}
	}
	summarizeLog(logf, "hub", filepath.Join(hubDir, "logs", "hub.log"))
	summarizeLog(logf, "agents", agentLog.Name())
	return res, nil
}

// benchPolicy is the access policy measurePolicy creates; each agent applies
// it as a ClusterRoleBinding of this name.
const benchPolicy = "bench-fleet-access"

// measurePolicy creates an organization-wide access policy and notes when
// each Healthy cluster's agent applies its binding (into the simulated
// cluster: what an apiserver then does is measured by bench policy).
func measurePolicy(ctx context.Context, cl client.Client, hubPID int, f *fleet, sims []*simCluster, res *fleetResult, logf func(string, ...any)) error {
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: benchPolicy}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "bench"}}},
	}}
	ticks := treeTicks(hubPID)
	start := time.Now()
	if err := cl.Create(ctx, p); err != nil {
		return err
	}
	defer cl.Delete(context.Background(), p)
	for deadline := start.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		f.mu.Lock()
		res.policy = res.policy[:0]
		for _, s := range sims {
			if at, ok := s.applied[policy.ObjectName(benchPolicy)]; ok {
				res.policy = append(res.policy, at.Sub(start))
			}
		}
		f.mu.Unlock()
		if len(res.policy) >= res.healthy {
			break
		}
	}
	res.fanoutCPU = float64(treeTicks(hubPID)-ticks) / clockTicks
	sortDurations(res.policy)
	logf("policy applied in %d/%d clusters: p50/p99 %s, every cluster %s; hub CPU meanwhile %.2f s", len(res.policy), res.healthy, pair(res.policy), maxOf(res.policy), res.fanoutCPU)
	return nil
}

// unstructuredScheme maps every built-in kind to unstructured objects, as
// the fake dynamic client needs; built once, it is shared by every simulated
// cluster instead of copied into each.
var unstructuredScheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	for gvk := range clientgoscheme.Scheme.AllKnownTypes() {
		if strings.HasSuffix(gvk.Kind, "List") {
			s.AddKnownTypeWithName(gvk, &unstructured.UnstructuredList{})
		} else {
			s.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		}
	}
	return s
})

// newSimDynamic returns a simulated member cluster seeded with objs (the
// fake copies them). Reactors note when a probe's pod is created, when the
// agent next lists pods (both run under the fake's lock, so a list after the
// create is known to see the new pod) and when the agent applies the bench
// policy's binding, which applyStores then stores.
func newSimDynamic(f *fleet, s *simCluster, objs []runtime.Object) *fakedynamic.FakeDynamicClient {
	dyn := fakedynamic.NewSimpleDynamicClientWithCustomListKinds(unstructuredScheme(), nil, objs...)
	applyStores(dyn) // first, so that it answers after the reactors below
	dyn.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		if p := s.probe; p != nil && p.changed.IsZero() {
			p.changed = time.Now()
		}
		f.mu.Unlock()
		return false, nil, nil
	})
	dyn.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		if p := s.probe; p != nil && !p.changed.IsZero() && p.read.IsZero() {
			p.read = time.Now()
		}
		f.mu.Unlock()
		return false, nil, nil
	})
	dyn.PrependReactor("patch", "clusterrolebindings", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if pa, ok := a.(k8stesting.PatchAction); ok {
			f.mu.Lock()
			if _, seen := s.applied[pa.GetName()]; !seen {
				if s.applied == nil {
					s.applied = map[string]time.Time{}
				}
				s.applied[pa.GetName()] = time.Now()
			}
			f.mu.Unlock()
		}
		return false, nil, nil
	})
	return dyn
}

// newSimServer answers, for every simulated cluster, what an agent asks its
// apiserver beyond objects: whether it is ready, and its version.
func newSimServer() (*rest.RESTClient, error) {
	return rest.RESTClientFor(&rest.Config{
		Host:      "https://simulated.invalid",
		Transport: simAPIServer{},
		// One client serves the whole fleet: no client-side throttling.
		QPS: -1,
		ContentConfig: rest.ContentConfig{
			GroupVersion:         &corev1.SchemeGroupVersion,
			NegotiatedSerializer: clientgoscheme.Codecs.WithoutConversion(),
		},
	})
}

type simAPIServer struct{}

func (simAPIServer) RoundTrip(r *http.Request) (*http.Response, error) {
	body, typ := "ok", "text/plain"
	if r.URL.Path == "/version" {
		body, typ = `{"gitVersion":"v1.37.0","platform":"linux/amd64"}`, "application/json"
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {typ}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r,
	}, nil
}

// phaseLog writes the agents' log and notes, per cluster, when its agent
// submitted its CSR and when it got its certificate, from the agent's own
// log messages (klog has one entry per Write).
type phaseLog struct {
	mu sync.Mutex
	w  io.Writer
	f  *fleet
}

func (l *phaseLog) Write(p []byte) (int, error) {
	now := time.Now()
	line := string(p)
	csr := strings.Contains(line, `"submitted certificate request"`)
	if csr || strings.Contains(line, `"agent registered"`) {
		if i := strings.Index(line, ` cluster="`); i >= 0 {
			name, _, _ := strings.Cut(line[i+len(` cluster="`):], `"`)
			if s := l.f.byName[name]; s != nil {
				l.f.mu.Lock()
				if csr {
					s.csrAt = now
				} else {
					s.registeredAt = now
				}
				l.f.mu.Unlock()
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// simObjects is what every simulated cluster holds: 2 Ready nodes, 5
// namespaces and 6 pods, as the dynamic client holds them, and how many pods.
func simObjects() ([]runtime.Object, int32, error) {
	var objs []runtime.Object
	for _, name := range []string{"node-1", "node-2"} {
		objs = append(objs, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{
				Capacity: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
					corev1.ResourcePods: resource.MustParse("110"),
				},
				Allocatable: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("15Gi"),
					corev1.ResourcePods: resource.MustParse("110"),
				},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			},
		})
	}
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease", "shop"} {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	objs = append(objs,
		simPod("kube-system", "coredns", "coredns-0"), simPod("kube-system", "coredns", "coredns-1"),
		simPod("shop", "web", "web-0"), simPod("shop", "web", "web-1"), simPod("shop", "web", "web-2"),
		simPod("shop", "db", "db-0"),
	)
	var pods int32
	for i, o := range objs {
		if _, ok := o.(*corev1.Pod); ok {
			pods++
		}
		var err error
		if objs[i], err = toUnstructured(o); err != nil {
			return nil, 0, err
		}
	}
	return objs, pods, nil
}

// toUnstructured converts a built-in object for the dynamic client.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := clientgoscheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

func simPod(ns, app, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: app, Image: app}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func printFleet(out io.Writer, rs []*fleetResult) {
	if len(rs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CLUSTERS\tREGISTER ALL (s)\tATTACH→HEALTHY p50/p99\tHUB PSS MiB\tHUB RSS MiB\tKB/CLUSTER\tHUB CPU (mCPU)\tHEARTBEAT→STATUS p50/p99\tAFTER AGENT READ p50/p99\tPOLICY→APPLIED p50/p99\t")
	for _, r := range rs {
		kb := "-"
		if r.loaded.PSS > 0 && r.healthy > 0 {
			kb = fmt.Sprintf("%.0f", r.kbPerCluster(r.loaded.PSS, r.idle.PSS))
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.n, r.registerAll.Seconds(),
			pair(r.attach), mibOrDash(r.loaded.PSS), mibOrDash(r.loaded.RSS), kb,
			fmt.Sprintf("%.0f", r.hubCPU), pair(r.total), pair(r.sent), pair(r.policy))
	}
	tw.Flush()
	fmt.Fprintln(out)
	for _, r := range rs {
		fmt.Fprintf(out, "%d clusters: %d Healthy after registration (%d agent restarts), %d not Healthy at the window's end; "+
			"idle hub PSS %.0f MiB; hub CPU while registering %.0f mCPU\n",
			r.n, r.healthy, r.restarts, r.notHealthy, mib(r.idle.PSS), r.regCPU)
		printMemory(out, r)
		printHeap(out, r)
		fmt.Fprintf(out, "  attach→Healthy p50/p99 by phase: attach API calls %s, to CSR submitted %s, to certificate %s, to Healthy %s\n",
			pair(r.phases[0]), pair(r.phases[1]), pair(r.phases[2]), pair(r.phases[3]))
		fmt.Fprintf(out, "  heartbeat→status: %d/%d changes seen, max %s; after agent read max %s\n",
			len(r.total), r.probes, maxOf(r.total), maxOf(r.sent))
		fmt.Fprintf(out, "  policy create → binding applied by the agent: %d/%d clusters, p50/p99 %s, every cluster %s; hub CPU from the create to the last apply %.2f s\n",
			len(r.policy), r.healthy, pair(r.policy), maxOf(r.policy), r.fanoutCPU)
		fmt.Fprintf(out, "  bench process (the simulated fleet): RSS %.0f MiB, CPU %.0f mCPU over the window\n", mib(r.benchRSS), r.benchCPU)
		printRestart(out, r.n, r.restart)
		if r.note != "" {
			fmt.Fprintf(out, "  %s\n", r.note)
		}
	}
	fmt.Fprintf(out, "\nHEARTBEAT→STATUS is from the change in the member cluster to the hub's Cluster status showing it (it includes\n"+
		"waiting for the next heartbeat, up to %s); AFTER AGENT READ is from the agent listing the changed pods to the same point.\n",
		heartbeat.DefaultInterval)
}

func pair(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs / %.2fs", pct(ds, 50).Seconds(), pct(ds, 99).Seconds())
}

func maxOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", ds[len(ds)-1].Seconds())
}

// pct is the p-th percentile of sorted ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	i := (len(ds)*p + 99) / 100
	return ds[max(0, min(len(ds)-1, i-1))]
}

func sortDurations(ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func mibOrDash(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", mib(b))
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat on Linux.
const clockTicks = 100

// treeTicks is the user+system CPU time, in clock ticks, of pid and its
// living descendants.
func treeTicks(pid int) int64 {
	total := procTicks(pid)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, c := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(c); err == nil {
				total += treeTicks(child)
			}
		}
	}
	return total
}

func procTicks(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it start at "state".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// selfRSS is this process's resident memory alone (not its children's).
func selfRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// summarizeLog reports a klog file's error and warning lines, grouped by
// the source line that logged them, most frequent first.
func summarizeLog(logf func(string, ...any), name, path string) {
	f, err := os.Open(path)
	if err != nil {
		logf("%s log: %v", name, err)
		return
	}
	defer f.Close()
	type site struct {
		count   int
		example string
	}
	sites := map[string]*site{}
	var errs, warns int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) == 0 || (line[0] != 'E' && line[0] != 'W') {
			continue
		}
		// klog: "E0102 15:04:05.000000   PID file.go:123] message"
		end := strings.Index(line, "] ")
		if end < 0 {
			continue
		}
		if line[0] == 'E' {
			errs++
		} else {
			warns++
		}
		head := strings.Fields(line[:end])
		key := line[:1] + " " + head[len(head)-1]
		s := sites[key]
		if s == nil {
			s = &site{example: line[end+2:]}
			sites[key] = s
		}
		s.count++
	}
	logf("%s log: %d error and %d warning lines", name, errs, warns)
	keys := make([]string, 0, len(sites))
	for k := range sites {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sites[keys[i]].count > sites[keys[j]].count })
	for _, k := range keys[:min(len(keys), 6)] {
		ex := sites[k].example
		if len(ex) > 200 {
			ex = ex[:200] + "…"
		}
		logf("  %6d× %s: %s", sites[k].count, k, ex)
	}
}
