package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/procs"
)

// FloodOptions say how hard one identity floods the hub.
type FloodOptions struct {
	// Window is how long each phase lasts.
	Window time.Duration
	// Dialers open streams at once in the streams phase.
	Dialers int
	// Objects is how many of each kind the objects phase tries to create.
	Objects int
	// HubBinary is the flotilla binary whose hub to flood (default: this
	// one), to compare another build's.
	HubBinary string
}

// Flood starts a hub, attaches a cluster "flood" (no agent) and, holding
// that cluster's agent identity (a certificate the hub's CA signs, as an
// agent's data dir holds), floods the hub in phases: reports on one stream
// as fast as the hub answers them, each with new health; the same, each
// with a new policy report; streams opened as fast as dialers can; and
// ClusterNamespaces and Leases created in its hub namespace. Through each
// phase, and once idle, an admin client makes a request every 50 ms (a
// list of Clusters, a get, a label patch of another Cluster). It prints,
// per phase, the hub's CPU and memory, the admin latency and what the
// flood achieved.
func Flood(ctx context.Context, out, progress io.Writer, o FloodOptions) error {
	self, err := procs.Self()
	if err != nil {
		return err
	}
	quietLogs()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "  %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	tmp, err := os.MkdirTemp("", "flotilla-bench-flood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	hubDir := filepath.Join(tmp, "hub")
	if o.HubBinary != "" {
		self = o.HubBinary
	}
	hubProc, err := procs.Start("hub", self, []string{"hub", "--data-dir", hubDir}, hubDir+".out")
	if err != nil {
		return err
	}
	defer hubProc.Stop(15 * time.Second)
	if err := hubProc.WaitReady(hubDir, 2*time.Minute); err != nil {
		return err
	}
	cfg, err := kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	cfg.QPS = -1 // the admin's latency is the hub's, not client-side throttling
	admin, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err
	}
	for _, name := range []string{"flood", "bystander"} {
		if _, err := attach.Attach(ctx, admin, cfg, attach.Options{Name: name}); err != nil {
			return err
		}
	}
	id, err := floodIdentity(ctx, admin, hubDir, "flood")
	if err != nil {
		return err
	}
	if id.watch, err = client.NewWithWatch(cfg, client.Options{Scheme: hub.Scheme()}); err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // start-up and attach work settle
	logf("hub ready (pid %d); each phase lasts %s", hubProc.PID(), o.Window)

	phases := []struct {
		name  string
		flood func(ctx context.Context) string
	}{
		{"idle", func(ctx context.Context) string { <-ctx.Done(); return "" }},
		{"reports", func(ctx context.Context) string { return id.floodReports(ctx, admin, false) }},
		{"policy reports", func(ctx context.Context) string { return id.floodReports(ctx, admin, true) }},
		{"streams", func(ctx context.Context) string { return id.floodStreams(ctx, o.Dialers) }},
		{"objects", func(ctx context.Context) string { return id.floodObjects(ctx, o.Objects) }},
	}
	fmt.Fprintf(out, "%-15s %9s %9s %9s %9s %9s %9s %9s  %s\n", "phase", "hub CPU", "bench CPU", "hub RSS", "hub PSS", "admin p50", "admin p99", "admin max", "flood")
	for _, p := range phases {
		logf("phase %s", p.name)
		res := measurePhase(ctx, hubProc.PID(), admin, o.Window, p.flood)
		fmt.Fprintf(out, "%-15s %9s %9s %5.0f MiB %5.0f MiB %9s %9s %9s  %s\n", p.name,
			fmt.Sprintf("%.2f", res.cores), fmt.Sprintf("%.2f", res.benchCores), mib(res.mem.RSS), mib(res.mem.PSS),
			pct(res.admin, 50).Round(100*time.Microsecond), pct(res.admin, 99).Round(100*time.Microsecond),
			pct(res.admin, 100).Round(100*time.Microsecond), res.note)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintln(out, "hub and bench CPU in cores over the phase (they share this machine's cores); memory of the hub's process tree at its end; admin: a request every 50 ms (list Clusters, get one, patch a label of another)")
	return nil
}

type phaseResult struct {
	cores float64
	// benchCores is the flood's own CPU (and the admin client's): on a
	// small machine it competes with the hub for the same cores.
	benchCores float64
	mem        procs.Memory
	admin      []time.Duration
	note       string
}

// measurePhase runs flood for window while the admin client makes its
// requests, and measures the hub (pid) meanwhile.
func measurePhase(ctx context.Context, pid int, admin client.Client, window time.Duration, flood func(context.Context) string) phaseResult {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var res phaseResult
	notes := make(chan string, 1)
	go func() { notes <- flood(ctx) }()
	ticks0, self0, start := treeTicks(pid), procTicks(os.Getpid()), time.Now()
	res.admin = adminLatency(ctx, admin)
	secs := time.Since(start).Seconds()
	res.cores = float64(treeTicks(pid)-ticks0) / clockTicks / secs
	res.benchCores = float64(procTicks(os.Getpid())-self0) / clockTicks / secs
	res.mem, _ = procs.TreeMemory(pid)
	res.note = <-notes
	sortDurations(res.admin)
	return res
}

// adminLatency makes an admin request every 50 ms until ctx ends and
// returns how long each took.
func adminLatency(ctx context.Context, admin client.Client) []time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return lat
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		var err error
		switch i % 3 {
		case 0:
			err = admin.List(rctx, &fv1.ClusterList{})
		case 1:
			err = admin.Get(rctx, client.ObjectKey{Name: "bystander"}, &fv1.Cluster{})
		default:
			patch := fmt.Sprintf(`{"metadata":{"labels":{"bench-flood":"%d"}}}`, i)
			err = admin.Patch(rctx, &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, client.RawPatch(types.MergePatchType, []byte(patch)))
		}
		d := time.Since(start)
		cancel()
		if err != nil {
			d = 30 * time.Second // a failed request counts as the worst
		}
		lat = append(lat, d)
	}
}

// floodID is one cluster's agent identity, as an attacker holds it.
type floodID struct {
	cluster string
	url     string
	rt      func() *http.Transport // a new connection's transport
	rest    *rest.Config           // the identity on the hub's apiserver
	watch   client.WithWatch       // the admin's, to count the Cluster's writes
}

// floodIdentity signs an agent certificate for cluster's current attach
// with the hub's CA, and reads where streams open.
func floodIdentity(ctx context.Context, admin client.Client, hubDir, cluster string) (*floodID, error) {
	var c fv1.Cluster
	if err := admin.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil {
		return nil, err
	}
	var info corev1.ConfigMap
	for {
		err := admin.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &info)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading hub info: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(hubDir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(filepath.Dir(hubDir), "flood-identity")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pair, err := ca.Client(dir, "agent", fv1.AgentUser(cluster), fv1.AgentGroup, fv1.AttachGroup(string(c.UID)))
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(info.Data["heartbeatCA"]))
	adminCfg, err := kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	as := rest.AnonymousClientConfig(adminCfg)
	as.CertFile, as.KeyFile, as.QPS = pair.CertFile, pair.KeyFile, -1
	return &floodID{
		cluster: cluster, url: info.Data["heartbeatURL"], rest: as,
		rt: func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
		},
	}, nil
}

// floodReports writes reports on one stream without waiting for replies
// (at most 200 unanswered), each with other health, and with policies a
// new policy report each; it counts replies and the Cluster's writes.
func (f *floodID) floodReports(ctx context.Context, admin client.Client, policies bool) string {
	rt := f.rt()
	defer rt.CloseIdleConnections()
	var replies, refused, retried atomic.Int64
	var writes atomic.Int64
	stopWatch, err := watchWrites(ctx, f.watch, f.cluster, &writes)
	if err != nil {
		return "watching the Cluster: " + err.Error()
	}
	defer stopWatch()
	conn, err := rawStream(ctx, rt, f.url)
	if err != nil {
		return "stream: " + err.Error()
	}
	defer conn.Close()
	credit := make(chan struct{}, 200)
	go func() {
		dec := json.NewDecoder(conn)
		for {
			var m heartbeat.Message
			if dec.Decode(&m) != nil {
				return
			}
			if m.Reply != nil {
				replies.Add(1)
				if m.Reply.Refused != "" || m.Reply.Error != "" {
					refused.Add(1)
				}
				if m.Reply.Retry != "" {
					retried.Add(1)
				}
				select {
				case <-credit:
				default:
				}
			}
		}
	}()
	go func() { <-ctx.Done(); conn.Close() }()
	start := time.Now()
	enc := json.NewEncoder(conn)
	for i := int32(1); ctx.Err() == nil; i++ {
		select {
		case credit <- struct{}{}:
		case <-ctx.Done():
		}
		r := heartbeat.Report{IntervalSeconds: 10, Reachable: true, Pods: i}
		if policies {
			r.Policies = &fv1.ClusterPolicyStatus{Synced: "True", Objects: i}
		}
		if enc.Encode(r) != nil {
			break
		}
	}
	elapsed := time.Since(start)
	time.Sleep(2 * heartbeat.MinWriteGap) // the last coalesced write
	n := writes.Load()
	note := fmt.Sprintf("%.0f replies/s; %d Cluster writes (%.1f/s)", float64(replies.Load())/elapsed.Seconds(), n, float64(n)/elapsed.Seconds())
	if policies {
		note += fmt.Sprintf("; %d replies asked to retry later", retried.Load())
	}
	if n := refused.Load(); n > 0 {
		note += fmt.Sprintf("; %d refused", n)
	}
	return note
}

// watchWrites counts the writes of Cluster name until the returned stop.
func watchWrites(ctx context.Context, cl client.WithWatch, name string, writes *atomic.Int64) (stop func(), err error) {
	w, err := cl.Watch(ctx, &fv1.ClusterList{}, client.MatchingFields{"metadata.name": name})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for ev := range w.ResultChan() {
			if first && ev.Type == watch.Added {
				first = false // the watch's start, not a write
				continue
			}
			writes.Add(1)
		}
	}()
	return func() { w.Stop(); <-done }, nil
}

// floodStreams opens streams of the identity with dialers at once, each
// sending one report and keeping what it opened, until ctx ends.
func (f *floodID) floodStreams(ctx context.Context, dialers int) string {
	var opened, limited, failed atomic.Int64
	var mu sync.Mutex
	var streams []*heartbeat.Stream
	var firstFail atomic.Value
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := f.rt()
			for ctx.Err() == nil {
				s, err := heartbeat.Dial(ctx, rt, f.url, func(string) {})
				switch {
				case err != nil && strings.Contains(err.Error(), "429"):
					limited.Add(1)
					continue
				case err != nil && ctx.Err() == nil:
					failed.Add(1)
					firstFail.CompareAndSwap(nil, err.Error())
					continue
				case err != nil:
					continue
				}
				opened.Add(1)
				bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s.Beat(bctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true})
				cancel()
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	live := 0
	mu.Lock()
	for _, s := range streams {
		select {
		case <-s.Done():
		default:
			live++
		}
		s.Close()
	}
	mu.Unlock()
	note := fmt.Sprintf("%d opened, %d refused 429, %d failed; %d still open at the end", opened.Load(), limited.Load(), failed.Load(), live)
	if why, ok := firstFail.Load().(string); ok {
		note += "; failed e.g.: " + why
	}
	return note
}

// floodObjects creates up to n ClusterNamespaces and n Leases in the
// identity's hub namespace, and counts how many the hub refuses. What it
// created is left: the hub is thrown away.
func (f *floodID) floodObjects(ctx context.Context, n int) string {
	cl, err := client.New(f.rest, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err.Error()
	}
	ns := fv1.HubNamespace(f.cluster)
	count := func(create func(i int) error) (made, refused int, first string) {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			if err := create(i); err != nil {
				if ctx.Err() != nil {
					break
				}
				refused++
				if first == "" {
					first = err.Error()
				}
				continue
			}
			made++
		}
		return made, refused, first
	}
	cnMade, cnRefused, cnWhy := count(func(i int) error {
		return cl.Create(ctx, &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%d", i)}})
	})
	leaseMade, leaseRefused, leaseWhy := count(func(i int) error {
		return cl.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%d", i)}})
	})
	note := fmt.Sprintf("ClusterNamespaces %d created, %d refused; Leases %d created, %d refused", cnMade, cnRefused, leaseMade, leaseRefused)
	for _, why := range []string{cnWhy, leaseWhy} {
		if why != "" {
			note += "; e.g. " + why
		}
	}
	return note
}

// rawStream opens a stream and returns its connection, to write reports
// without waiting for replies.
func rawStream(ctx context.Context, rt http.RoundTripper, url string) (io.ReadWriteCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", heartbeat.Protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("hub answered %s: %s", resp.Status, body)
	}
	return resp.Body.(io.ReadWriteCloser), nil
}
