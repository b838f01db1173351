package lifecycle

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/localplane"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/realnode"
)

// The agent runs as the Deployment of its manifest on a real node: cluster
// attach --cluster-kubeconfig installs it, its pod registers and keeps its
// identity in its Secret, a deleted pod's successor does not register
// again, and detach removes it.
func TestAgentRunsAsPodOnARealNode(t *testing.T) {
	if hostIP() == "" {
		t.Fatal("this host has no address but loopback: pods cannot reach the hub")
	}
	const name = "podagent"
	cs, kc := plainRealCluster(t, name)

	out := mustFlotilla(t, "cluster", "attach", name, "--cluster-kubeconfig", kc)
	if !strings.Contains(out, "the agent was installed") {
		t.Fatalf("attach said %q", out)
	}
	defer flotilla("cluster", "detach", name, "--force")
	healthy := func(ctx context.Context) (bool, error) {
		c := &fv1.Cluster{}
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, c); err != nil {
			return false, nil
		}
		return c.Status.Health == fv1.HealthHealthy, nil
	}
	waitFor(t, 3*time.Minute, "the agent's pod registers and the cluster is Healthy", healthy)
	pods, err := cs.CoreV1().Pods("flotilla-system").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=flotilla-agent"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("agent pods: %v %v", pods, err)
	}
	first := pods.Items[0]
	if first.Spec.NodeName != name+"-real-1" {
		t.Fatalf("the agent runs on %q, not the real node", first.Spec.NodeName)
	}
	secret, err := cs.CoreV1().Secrets("flotilla-system").Get(context.Background(), "flotilla-agent-identity", metav1.GetOptions{})
	if err != nil || len(secret.Data) == 0 {
		t.Fatalf("identity Secret: %v %v", secret, err)
	}
	csrs := agentCSRs(t, name)

	if err := cs.CoreV1().Pods("flotilla-system").Delete(context.Background(), first.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "a new agent pod Running", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("flotilla-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=flotilla-agent"})
		if err != nil || len(pods.Items) != 1 || pods.Items[0].Name == first.Name {
			return false, nil
		}
		return pods.Items[0].Status.Phase == "Running", nil
	})
	// The new pod heartbeats, with the identity the first one left.
	waitFor(t, time.Minute, "the new pod heartbeating", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("flotilla-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=flotilla-agent"})
		if err != nil || len(pods.Items) != 1 {
			return false, nil
		}
		return strings.Contains(agentLog(pods.Items[0].UID), `"heartbeating"`), nil
	})
	waitFor(t, time.Minute, "Healthy with the new pod", healthy)
	if n := agentCSRs(t, name); n != csrs {
		t.Fatalf("the new pod registered again: %d certificate requests, %d before", n, csrs)
	}

	if _, errOut, err := flotilla("cluster", "detach", name); err != nil {
		logs, _ := exec.Command("kubectl", "--kubeconfig", kc, "-n", "flotilla-system", "logs", "deploy/flotilla-agent", "--previous", "--tail", "40").CombinedOutput()
		pods, _ := exec.Command("kubectl", "--kubeconfig", kc, "-n", "flotilla-system", "get", "pods", "-o", "jsonpath={.items[*].status.containerStatuses}").CombinedOutput()
		logs = append(logs, agentLog("*")...)
		t.Fatalf("detach: %v %s\nagent pods:\n%s\nits log:\n%s", err, errOut, pods, logs)
	}
	waitFor(t, 2*time.Minute, "the agent and its binding removed from the cluster", func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments("flotilla-system").Get(ctx, "flotilla-agent", metav1.GetOptions{})
		_, berr := cs.RbacV1().ClusterRoleBindings().Get(ctx, "flotilla-agent", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && apierrors.IsNotFound(berr), nil
	})
}

// plainRealCluster runs a local cluster with one real node that no hub
// made or knows, as `flotilla localplane` runs one, and returns its client
// and admin kubeconfig; the test stops it and removes its node.
func plainRealCluster(t *testing.T, name string) (kubernetes.Interface, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	v := newer
	err := localplane.WriteDesired(dir, localplane.Desired{
		Name: name, ControlPlane: []string{v},
		Nodes: []nodesim.Node{{Name: name + "-real-1", Index: 1, Version: v, Real: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "localplane", "--dir", dir)
	log, err := os.Create(dir + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if err := realnode.Forget(dir); err != nil {
			t.Errorf("removing the real node: %v", err)
		}
	})
	kc := localplane.Kubeconfig(dir)
	var cs *kubernetes.Clientset
	waitFor(t, 3*time.Minute, "the real node Ready", func(ctx context.Context) (bool, error) {
		if cs == nil {
			cfg, err := kubeconfig.Load(kc)
			if err != nil {
				return false, nil
			}
			if cs, err = kubernetes.NewForConfig(cfg); err != nil {
				return false, err
			}
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, name+"-real-1", metav1.GetOptions{})
		return err == nil && nodeReady(n), nil
	})
	return cs, kc
}

// hostIP is an IPv4 address of this host that is not loopback, or "".
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "172.30.") {
			return ipn.IP.String()
		}
	}
	return ""
}

func agentCSRs(t *testing.T, name string) int {
	t.Helper()
	n, err := env.Hub.AgentCSRs(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// agentLog is the log of the agent in the pod with uid ("*": every such
// pod's): the agent logs to its data directory, an emptyDir on the node.
func agentLog(uid types.UID) string {
	files, _ := filepath.Glob(filepath.Join(realnode.StateRoot, "*", "kubelet", "pods", string(uid), "volumes", "kubernetes.io~empty-dir", "data", "logs", "agent.log"))
	var out []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, b[max(0, len(b)-6000):]...)
	}
	return string(out)
}
