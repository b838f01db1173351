package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
)

// Agent starts a hub and a local cluster, then attaches the cluster runs
// times (each a fresh attach with a new agent process, then a forced
// detach) and prints attach→Healthy. Then it leaves one agent idle for window
// and prints its memory and CPU. agentBin is the agent binary to measure.
func Agent(ctx context.Context, out io.Writer, runs int, window time.Duration, agentBin string) error {
	self, err := procs.Self()
	if err != nil {
		return err
	}
	if agentBin == "" {
		agentBin = self
	}
	tmp, err := os.MkdirTemp("", "flotilla-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lf, err := startLocal(tmp, 1, 2)
	if err != nil {
		return err
	}
	defer lf.stop()
	cl, cfg, clusterDir := lf.cl, lf.cfg, lf.clusterDirs[0]

	var lat []time.Duration
	var agent *procs.Proc
	for i := range runs {
		name := "bench-" + strconv.Itoa(i)
		start := time.Now()
		agent, err = startAgent(ctx, cl, cfg, tmp, name, filepath.Join(clusterDir, "kubeconfig"), agentBin)
		if err != nil {
			return err
		}
		defer agent.Stop(5 * time.Second)
		err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			var c fv1.Cluster
			if err := cl.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
				return false, nil
			}
			return c.Status.Health == fv1.HealthHealthy, nil
		})
		if err != nil {
			return fmt.Errorf("%s not Healthy: %v", name, err)
		}
		lat = append(lat, time.Since(start))
		if i < runs-1 {
			agent.Stop(5 * time.Second)
			if err := attach.Detach(ctx, cl, name, true, time.Minute); err != nil {
				return err
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "attach → Healthy over %d runs: p50 %s  p99 %s  max %s\n", runs,
		lat[len(lat)/2].Round(time.Millisecond), lat[(len(lat)*99)/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))

	// Idle agent: memory, and CPU over the window. Its first half minute
	// is startup (registration, first lists, the first policy report),
	// printed apart: 0.2 to 0.45 s of CPU, which a 60 s window starting
	// earlier would count as idle.
	time.Sleep(30 * time.Second)
	cpu0, err := cpuTicks(agent.PID())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "agent startup: %d ms of CPU from its start to 30 s after Healthy\n", cpu0*10)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window):
	}
	cpu1, _ := cpuTicks(agent.PID())
	mem, err := procs.TreeMemory(agent.PID())
	if err != nil {
		return err
	}
	milli := float64(cpu1-cpu0) * 10 / window.Seconds() // ticks are 10 ms
	fmt.Fprintf(out, "idle agent (%s) over %s: RSS %.1f MiB  PSS %.1f MiB  CPU %.2f mCPU\n",
		filepath.Base(agentBin), window, float64(mem.RSS)/(1<<20), float64(mem.PSS)/(1<<20), milli)
	return nil
}

// localFleet is a hub and local clusters run as child processes of this
// binary, with an unthrottled admin client of the hub.
type localFleet struct {
	procs       []*procs.Proc
	clusterDirs []string
	cfg         *rest.Config
	cl          client.Client
}

// startLocal starts a hub and n local clusters of nodes nodes each under
// tmp and waits until all are ready.
func startLocal(tmp string, n, nodes int) (*localFleet, error) {
	self, err := procs.Self()
	if err != nil {
		return nil, err
	}
	lf := &localFleet{}
	hubDir := filepath.Join(tmp, "hub")
	dirs := []string{hubDir}
	args := [][]string{{"hub", "--data-dir", hubDir}}
	for i := range n {
		dir := filepath.Join(tmp, "cluster-"+strconv.Itoa(i))
		lf.clusterDirs = append(lf.clusterDirs, dir)
		dirs = append(dirs, dir)
		args = append(args, []string{"localcluster", "--name", "c" + strconv.Itoa(i), "--data-dir", dir, "--nodes", strconv.Itoa(nodes)})
	}
	for i, a := range args {
		p, err := procs.Start(a[0], self, a, dirs[i]+".log")
		if err != nil {
			lf.stop()
			return nil, err
		}
		lf.procs = append(lf.procs, p)
	}
	for i, p := range lf.procs {
		if err := p.WaitReady(dirs[i], 2*time.Minute); err != nil {
			lf.stop()
			return nil, err
		}
	}
	if lf.cfg, err = kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig")); err != nil {
		lf.stop()
		return nil, err
	}
	lf.cfg.QPS = -1 // polls must not queue behind client-side throttling
	if lf.cl, err = client.New(lf.cfg, client.Options{Scheme: hub.Scheme()}); err != nil {
		lf.stop()
		return nil, err
	}
	return lf, nil
}

func (lf *localFleet) stop() {
	for _, p := range lf.procs {
		p.Stop(10 * time.Second)
	}
}

// startAgent attaches name to the hub and starts an agent (agentBin, or
// this binary's "agent" when empty) for the cluster clusterKubeconfig
// reaches; its files go in dir.
func startAgent(ctx context.Context, cl client.Client, cfg *rest.Config, dir, name, clusterKubeconfig, agentBin string) (*procs.Proc, error) {
	self, err := procs.Self()
	if err != nil {
		return nil, err
	}
	boot, err := attach.Attach(ctx, cl, cfg, attach.Options{Name: name})
	if err != nil {
		return nil, err
	}
	bootFile := filepath.Join(dir, name+".boot")
	if err := os.WriteFile(bootFile, boot, 0o600); err != nil {
		return nil, err
	}
	agentDir := filepath.Join(dir, name)
	args := []string{"--cluster-kubeconfig", clusterKubeconfig, "--bootstrap-kubeconfig", bootFile, "--data-dir", agentDir}
	if agentBin == "" || agentBin == self {
		agentBin, args = self, append([]string{"agent"}, args...)
	}
	return procs.Start("agent", agentBin, args, agentDir+".log")
}

// cpuTicks is utime+stime of pid in clock ticks (1/100 s).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces, start after ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}
