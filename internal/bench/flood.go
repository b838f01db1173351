package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
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
	logf := progressLog(progress)
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
