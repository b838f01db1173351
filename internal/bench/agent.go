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
	hubDir, clusterDir := filepath.Join(tmp, "hub"), filepath.Join(tmp, "cluster")
	h, err := procs.Start("hub", self, []string{"hub", "--data-dir", hubDir}, hubDir+".log")
	if err != nil {
		return err
	}
	defer h.Stop(10 * time.Second)
	lc, err := procs.Start("localcluster", self, []string{"localcluster", "--name", "bench", "--data-dir", clusterDir, "--nodes", "2"}, clusterDir+".log")
	if err != nil {
		return err
	}
	defer lc.Stop(10 * time.Second)
	for p, d := range map[*procs.Proc]string{h: hubDir, lc: clusterDir} {
		if err := waitMarker(p, d); err != nil {
			return err
		}
	}
	cfg, err := kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	cl, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err
	}

	var lat []time.Duration
	var agent *procs.Proc
	for i := range runs {
		name := "bench-" + strconv.Itoa(i)
		start := time.Now()
		boot, err := attach.Attach(ctx, cl, cfg, attach.Options{Name: name})
		if err != nil {
			return err
		}
		bootFile := filepath.Join(tmp, name+".boot")
		if err := os.WriteFile(bootFile, boot, 0o600); err != nil {
			return err
		}
		agentDir := filepath.Join(tmp, name)
		args := []string{"--cluster-kubeconfig", filepath.Join(clusterDir, "kubeconfig"), "--bootstrap-kubeconfig", bootFile, "--data-dir", agentDir}
		if agentBin == self {
			args = append([]string{"agent"}, args...)
		}
		agent, err = procs.Start("agent", agentBin, args, agentDir+".log")
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

	// Idle agent: memory, and CPU over the window.
	time.Sleep(5 * time.Second)
	cpu0, err := cpuTicks(agent.PID())
	if err != nil {
		return err
	}
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
