package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"flotilla.dev/flotilla/internal/datadir"
)

// cpuProfiles records CPU profiles of this process (the simulated fleet)
// and of the hub for d, into dir as WHAT-fleet.pprof and WHAT-hub.pprof:
// what a fan-out or a reconnect spends its time on is otherwise guesswork.
// stop ends both and says where they are; with no dir it does nothing.
func cpuProfiles(dir, hubDir, what string, d time.Duration) (stop func() string, err error) {
	if dir == "" {
		return func() string { return "" }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	own, err := os.Create(filepath.Join(dir, what+"-fleet.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(own); err != nil {
		own.Close()
		return nil, err
	}
	hubFile := filepath.Join(dir, what+"-hub.pprof")
	hubDone := make(chan error, 1)
	go func() { hubDone <- hubProfile(hubDir, hubFile, d) }()
	return func() string {
		pprof.StopCPUProfile()
		own.Close()
		if err := <-hubDone; err != nil {
			return fmt.Sprintf("profiles: %s (the hub's failed: %v)", own.Name(), err)
		}
		return fmt.Sprintf("profiles: %s, %s", own.Name(), hubFile)
	}, nil
}

// hubProfile fetches a CPU profile of d from the hub's /debug/pprof, on its
// metrics port (kept in its data dir).
func hubProfile(hubDir, file string, d time.Duration) error {
	port, err := datadir.RecordedPort(hubDir, "metrics")
	if err != nil {
		return err
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub answered %s", resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}
