// Package bench measures Flotilla's own processes on this machine and prints
// the numbers; it asserts nothing.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"flotilla.dev/flotilla/internal/procs"
)

type sample struct {
	ready time.Duration
	mem   procs.Memory
}

// Startup starts a hub, a local cluster (2 nodes) and `up` with 2 clusters,
// each in a fresh data dir, runs times, and prints time to ready and RSS.
func Startup(ctx context.Context, out io.Writer, runs int) error {
	self, err := procs.Self()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flotilla-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	cases := []struct {
		name string
		args func(dir string) []string
		// ready is the dir whose ready marker ends the measurement.
		ready func(dir string) []string
	}{
		{"hub", func(d string) []string { return []string{"hub", "--data-dir", d} }, func(d string) []string { return []string{d} }},
		{"localcluster (2 nodes)", func(d string) []string {
			return []string{"localcluster", "--name", "bench", "--data-dir", d, "--nodes", "2"}
		}, func(d string) []string { return []string{d} }},
		{"up (hub + 2 clusters)", func(d string) []string { return []string{"up", "--data-dir", d, "--clusters", "2"} }, func(d string) []string {
			return []string{filepath.Join(d, "hub"), filepath.Join(d, "clusters", "cluster-1"), filepath.Join(d, "clusters", "cluster-2")}
		}},
	}
	fmt.Fprintf(out, "%-24s %-5s %10s %10s %9s %9s\n", "COMPONENT", "RUNS", "READY p50", "READY max", "PSS MiB", "RSS MiB")
	for _, c := range cases {
		var samples []sample
		for i := range runs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dir := filepath.Join(tmp, fmt.Sprintf("%d-%d", len(samples), i))
			s, err := measure(self, c.args(dir), c.ready(dir))
			if err != nil {
				return fmt.Errorf("%s: %v", c.name, err)
			}
			samples = append(samples, s)
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i].ready < samples[j].ready })
		var peak procs.Memory
		for _, s := range samples {
			peak.PSS, peak.RSS = max(peak.PSS, s.mem.PSS), max(peak.RSS, s.mem.RSS)
		}
		fmt.Fprintf(out, "%-24s %-5d %9.2fs %9.2fs %9.0f %9.0f\n", c.name, runs,
			samples[len(samples)/2].ready.Seconds(), samples[len(samples)-1].ready.Seconds(),
			float64(peak.PSS)/(1<<20), float64(peak.RSS)/(1<<20))
	}
	return nil
}

// measure starts one process, waits for every ready marker, lets it settle
// for 3 s and reads the memory of its whole process tree.
func measure(self string, args, readyDirs []string) (sample, error) {
	start := time.Now()
	p, err := procs.Start(args[0], self, args, filepath.Join(readyDirs[0]+".bench.log"))
	if err != nil {
		return sample{}, err
	}
	defer p.Stop(10 * time.Second)
	for _, d := range readyDirs {
		if err := waitMarker(p, d); err != nil {
			return sample{}, err
		}
	}
	s := sample{ready: time.Since(start)}
	time.Sleep(3 * time.Second)
	s.mem, err = procs.TreeMemory(p.PID())
	return s, err
}

func waitMarker(p *procs.Proc, dir string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited before ready: %v", p.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after 2m")
}
