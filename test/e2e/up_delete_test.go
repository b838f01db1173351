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

// TestUpClustersAreMadeClusters: up's clusters are made by the hub's local
// provider, so they are scaled and deleted like any other, while up and the
// other cluster keep running; detach, which would delete a made cluster,
// refuses and points at delete.
func TestUpClustersAreMadeClusters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".flotilla")
	p, _, upLog := startUpLogged(t, dir)
	hubKubeconfig := filepath.Join(dir, "hub", "admin.kubeconfig")
	ctx := context.Background()
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(flotilla(t), append(args, "--hub-kubeconfig", hubKubeconfig)...).CombinedOutput()
		return string(out), err
	}

	if out, err := cli("cluster", "detach", "cluster-1"); err == nil || !strings.Contains(out, "flotilla cluster delete cluster-1") {
		t.Fatalf("detach of a made cluster: err=%v\n%s", err, out)
	}
	if out, err := cli("cluster", "scale", "cluster-2", "--nodes", "3", "--wait"); err != nil {
		t.Fatalf("scale cluster-2: %v\n%s", err, out)
	}
	cs2 := clientset(t, filepath.Join(dir, "clusters", "cluster-2", "kubeconfig"))
	if nodes, err := cs2.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil || len(nodes.Items) != 3 {
		t.Fatalf("cluster-2 nodes after scaling to 3: %v %v", nodes, err)
	}

	cs1 := clientset(t, filepath.Join(dir, "clusters", "cluster-1", "kubeconfig"))
	if out, err := cli("cluster", "delete", "cluster-1", "--wait", "--timeout", "1m"); err != nil {
		t.Fatalf("delete cluster-1: %v\n%s", err, out)
	}
	if _, err := cs1.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		t.Errorf("cluster-1 still serves after its delete")
	}
	if _, err := os.Stat(filepath.Join(dir, "hub", "clusters", "cluster-1")); !os.IsNotExist(err) {
		t.Errorf("cluster-1's data is left: %v", err)
	}
	select {
	case <-p.Done():
		b, _ := os.ReadFile(upLog)
		t.Fatalf("up exited after the delete: %v\n%s", p.Err(), b)
	case <-time.After(2 * time.Second):
	}
	list, err := cli("cluster", "list")
	if err != nil || strings.Contains(list, "cluster-1 ") || !strings.Contains(list, "cluster-2") {
		t.Fatalf("cluster list after delete: err=%v\n%s", err, list)
	}
	if _, err := cs2.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); apierrors.IsNotFound(err) || err != nil {
		t.Errorf("cluster-2 after cluster-1's delete: %v", err)
	}
}
