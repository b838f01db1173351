package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpDetach detaches one of up's clusters: the detach succeeds, up and the
// other cluster keep running, and the detached local cluster keeps serving
// without its agent. Before, up took the agent's normal exit for a crash and
// stopped the fleet, and the detach waiting on the hub failed after seconds.
func TestUpDetach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".flotilla")
	p, _, upLog := startUpLogged(t, dir)
	hubKubeconfig := filepath.Join(dir, "hub", "admin.kubeconfig")
	c1 := filepath.Join(dir, "clusters", "cluster-1", "kubeconfig")
	ctx := context.Background()

	start := time.Now()
	out, err := exec.Command(flotilla(t), "cluster", "detach", "cluster-1", "--hub-kubeconfig", hubKubeconfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cluster cluster-1 detached") {
		t.Fatalf("detach after %s: err=%v\n%s", time.Since(start).Round(time.Millisecond), err, out)
	}

	// up says what happened and keeps running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(upLog)
		if strings.Contains(string(b), "Cluster cluster-1 was detached") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up did not report the detach:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-p.Done():
		b, _ := os.ReadFile(upLog)
		t.Fatalf("up exited after the detach: %v\n%s", p.Err(), b)
	case <-time.After(2 * time.Second):
	}

	// The detached cluster serves on, without Flotilla's namespace or agent.
	cs := clientset(t, c1)
	if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("detached cluster-1 no longer serves: %v", err)
	}
	if err := waitGone(ctx, func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "flotilla-system", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Errorf("flotilla-system in the detached cluster: %v", err)
	}

	// The hub forgot cluster-1 and still lists cluster-2.
	list, err := exec.Command(flotilla(t), "cluster", "list", "--hub-kubeconfig", hubKubeconfig).CombinedOutput()
	if err != nil || strings.Contains(string(list), "cluster-1 ") || !strings.Contains(string(list), "cluster-2") {
		t.Fatalf("cluster list after detach: err=%v\n%s", err, list)
	}
}

// waitGone waits up to 30 s for get to report NotFound (a namespace with
// content takes a moment to finish its deletion).
func waitGone(ctx context.Context, get func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return os.ErrExist
			}
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
