package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/provider/local"
)

// startUp runs `flotilla up` in dir and waits for its report.
func startUp(t *testing.T, dir string) (*procs.Proc, string) {
	t.Helper()
	p, report, _ := startUpLogged(t, dir)
	return p, report
}

// startUpLogged is startUp that also returns the file up's output goes to.
func startUpLogged(t *testing.T, dir string) (*procs.Proc, string, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "up.log")
	p, err := procs.Start("up", flotilla(t), []string{"up", "--data-dir", dir, "--clusters", "2"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(30 * time.Second)
		// The hub's clusters outlive a hub that was killed: stopped by PID.
		(&local.Provider{Root: filepath.Join(dir, "hub", "clusters")}).StopAll()
	})
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, _ := os.ReadFile(log)
		if strings.Contains(string(out), "Press Ctrl-C to stop.") {
			return p, string(out), log
		}
		select {
		case <-p.Done():
			t.Fatalf("up exited: %v\n%s", p.Err(), out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	out, _ := os.ReadFile(log)
	t.Fatalf("up not ready after 2m:\n%s", out)
	return nil, "", ""
}

func clientset(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	cfg, err := kubeconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// descendants lists pid and every process below it.
func descendants(pid int) []int {
	out := []int{pid}
	data, _ := exec.Command("ps", "-e", "-o", "pid=,ppid=").Output()
	children := map[int][]int{}
	for _, line := range strings.Split(string(data), "\n") {
		var p, pp int
		if n, _ := fmt.Sscan(line, &p, &pp); n == 2 {
			children[pp] = append(children[pp], p)
		}
	}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func TestUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".flotilla")
	p, report := startUp(t, dir)
	hubKubeconfig := filepath.Join(dir, "hub", "admin.kubeconfig")
	c1 := filepath.Join(dir, "clusters", "cluster-1", "kubeconfig")
	for _, want := range []string{hubKubeconfig, c1, filepath.Join(dir, "clusters", "cluster-2", "kubeconfig"), "kubectl --kubeconfig"} {
		if !strings.Contains(report, want) {
			t.Errorf("report does not mention %s:\n%s", want, report)
		}
	}
	ctx := context.Background()
	if _, err := clientset(t, hubKubeconfig).Discovery().ServerResourcesForGroupVersion("flotilla.dev/v1alpha1"); err != nil {
		t.Fatalf("hub serves Flotilla's API: %v", err)
	}
	cs := clientset(t, c1)
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 2 {
		t.Fatalf("cluster-1 nodes: %v, %v", nodes, err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A second up on the same dir fails at once and says why.
	start := time.Now()
	out, err := exec.Command(flotilla(t), "up", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another flotilla process") {
		t.Fatalf("second up: err=%v\n%s", err, out)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second up took %s to fail", time.Since(start))
	}

	// Ctrl-C stops everything, leaving no process behind.
	tree := descendants(p.PID())
	if len(tree) < 5 {
		t.Fatalf("expected up, hub, 2 clusters and their controllers; got pids %v", tree)
	}
	p.Signal(syscall.SIGINT)
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("up still running 20s after SIGINT")
	}
	time.Sleep(200 * time.Millisecond)
	for _, pid := range tree {
		if syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d still running after up stopped", pid)
			}
		}
	}

	// Running it again keeps the state.
	startUp(t, dir)
	if _, err := clientset(t, c1).CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("state after restart: %v", err)
	}
}
