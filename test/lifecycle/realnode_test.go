package lifecycle

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"flotilla.dev/flotilla/internal/images"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/realnode"
	"flotilla.dev/flotilla/internal/sandbox"
)

// A cluster with a real node runs pods for real: the workload's
// Deployment becomes Available on the real node, its Service answers from
// another pod, logs, exec and port-forward reach it, the node goes
// NotReady (and is tainted) while its kubelet is stopped and comes back,
// an upgrade replaces each node's kubelet and kube-proxy with the new
// version's and the workload serves again, and delete leaves nothing of
// the node on the host.
func TestRealNodeRunsPods(t *testing.T) {
	if err := realnode.Check(); err != nil {
		t.Fatalf("CI installs what real nodes need: %v", err)
	}
	const name = "real"
	netnsBefore := podNetNS(t)
	mustFlotilla(t, "cluster", "create", name, "--version", older, "--nodes", "1", "--real-nodes", "2", "--wait", "--timeout", "4m")
	deleted := false
	defer func() {
		if !deleted {
			deleteCluster(t, name)
		}
	}()
	cs, kc := member(t, name)
	node, other := name+"-real-1", name+"-real-2"
	waitFor(t, 2*time.Minute, "real nodes Ready", func(ctx context.Context) (bool, error) {
		for _, nn := range []string{node, other} {
			if n, err := cs.CoreV1().Nodes().Get(ctx, nn, metav1.GetOptions{}); err != nil || !nodeReady(n) {
				return false, nil
			}
		}
		return true, nil
	})
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	host := hostKernel(t)
	if n.Status.NodeInfo.KubeletVersion != older || n.Status.NodeInfo.KernelVersion != host || !strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") || n.Labels[realnode.Label] != "true" {
		t.Fatalf("node %s: kubelet %s, kernel %q, runtime %q, labels %v; want the cluster's version %s, the host's kernel %q, containerd, and %s",
			node, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.KernelVersion, n.Status.NodeInfo.ContainerRuntimeVersion, n.Labels, older, host, realnode.Label)
	}

	ref, err := images.Ref(images.Hello)
	if err != nil {
		t.Fatal(err)
	}
	// The workload on one node, its client on the other: what crosses
	// between nodes goes through the host's routes.
	web := workload(t, cs, ref, node, other)
	pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("web pods: %v %v", pods, err)
	}
	pod := pods.Items[0].Name

	t.Run("service answers a pod on another node", func(t *testing.T) {
		// kube-proxy programs a new Service within a sync or two.
		var out string
		waitFor(t, 30*time.Second, "the Service answering the client pod", func(ctx context.Context) (bool, error) {
			b, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kc, "exec", "client", "--", "/hello", "get", "http://"+web.Spec.ClusterIP+"/").CombinedOutput()
			out = string(b)
			return err == nil, nil
		})
		if !strings.HasPrefix(out, "hello from web-") || !strings.Contains(out, host) {
			t.Fatalf("through the service: %q", out)
		}
		out = kubectl(t, kc, "exec", "client", "--", "/hello", "get", "http://"+podIP(t, cs, pod)+":8080/")
		if !strings.HasPrefix(out, "hello from "+pod) {
			t.Fatalf("pod to pod across nodes: %q", out)
		}
	})
	t.Run("logs, exec and port-forward through the hub", func(t *testing.T) {
		hubKC := filepath.Join(t.TempDir(), "fleet.kubeconfig")
		if err := os.WriteFile(hubKC, []byte(mustFlotilla(t, "kubeconfig", name)), 0o600); err != nil {
			t.Fatal(err)
		}
		via := func(args ...string) string { return kubectl(t, hubKC, append([]string{"--context", name}, args...)...) }
		if out := via("logs", pod); !strings.Contains(out, "serving on :8080") {
			t.Fatalf("logs through the hub: %q", out)
		}
		if out := strings.TrimSpace(via("exec", pod, "--", "/hello", "uname")); out != host {
			t.Fatalf("exec through the hub: %q", out)
		}
		if body := portForward(t, hubKC, "--context", name, pod); !strings.HasPrefix(body, "hello from "+pod) {
			t.Fatalf("port-forward through the hub: %q", body)
		}
	})
	t.Run("logs", func(t *testing.T) {
		out := kubectl(t, kc, "logs", "-l", "app=web", "--prefix")
		if !strings.Contains(out, "serving on :8080") || !strings.Contains(out, "GET / from") {
			t.Fatalf("logs: %q", out)
		}
	})
	t.Run("exec sees the host kernel", func(t *testing.T) {
		if out := strings.TrimSpace(kubectl(t, kc, "exec", pod, "--", "/hello", "uname")); out != host {
			t.Fatalf("uname in the pod %q, host %q", out, host)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		body := portForward(t, kc, pod)
		if !strings.HasPrefix(body, "hello from "+pod) {
			t.Fatalf("through port-forward: %q", body)
		}
	})
	t.Run("sandboxed pod sees its own kernel", func(t *testing.T) {
		sandboxedPod(t, cs, kc, ref, host)
	})
	t.Run("a workspace policy requires the sandbox", func(t *testing.T) {
		sandboxRequired(t, cs, name, ref)
	})
	t.Run("kubelet stopped then started", func(t *testing.T) {
		kubeletStopsAndStarts(t, cs, node)
	})
	t.Run("upgrade replaces the kubelets and the workload serves again", func(t *testing.T) {
		realNodesUpgrade(t, cs, kc, name, ref, []string{node, other}, web.Spec.ClusterIP)
	})

	netIndex := readNetwork(t, name).Index
	states, _ := filepath.Glob(filepath.Join(realnode.StateRoot, fmt.Sprintf("%d-*", netIndex)))
	if len(states) != 2 {
		t.Fatalf("state directories of the 2 real nodes: %v", states)
	}
	deleteCluster(t, name)
	deleted = true
	for _, state := range states {
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("node state %s left after delete: %v", state, err)
		}
		if left := pids(state, ""); len(left) > 0 {
			t.Errorf("processes of the node left after delete: %v", left)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), fmt.Sprintf("flotilla-%d-", netIndex)) {
		t.Errorf("network namespaces left after delete: %s", out)
	}
	if after := podNetNS(t); after != netnsBefore {
		t.Errorf("pod network namespaces on the host: %d before the cluster, %d after its delete", netnsBefore, after)
	}
}

// podNetNS counts the pods' network namespaces the host keeps.
func podNetNS(t *testing.T) int {
	t.Helper()
	m, _ := filepath.Glob("/run/netns/cni-*")
	return len(m)
}

// Real nodes are refused where they cannot run, by the API.
func TestRealNodeBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--provider", "clusterapi", "--capi-kubeconfig-secret", "x", "--capi-class", "c"}, "real node pools are made by the local provider only"},
	} {
		args := append([]string{"cluster", "create", "refused", "--real-nodes", "1"}, c.args...)
		_, errOut, err := flotilla(args...)
		if err == nil || !strings.Contains(errOut, c.want) {
			t.Errorf("flotilla %s: %v %q; want it refused with %q", strings.Join(args, " "), err, errOut, c.want)
		}
	}
	if out, err := kubectlHub("get", "cluster", "refused"); err == nil {
		t.Fatalf("a refused cluster exists: %s", out)
	}
}

// workload runs the hello image as Deployment web (2 replicas) behind a
// Service on node webNode, and a client pod on node clientNode; it returns
// the Service once the Deployment is Available.
func workload(t *testing.T, cs kubernetes.Interface, ref, webNode, clientNode string) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	onReal := map[string]string{corev1.LabelHostname: webNode}
	container := corev1.Container{
		Name: "hello", Image: ref, Args: []string{"serve"},
		Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{NodeSelector: onReal, Containers: []corev1.Container{container}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelHostname: clientNode}, Containers: []corev1.Container{{Name: "hello", Image: ref, Args: []string{"serve"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "web Available and client Running", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Status.AvailableReplicas != 2 {
			return false, nil
		}
		p, err := cs.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	return svc
}

// kubeletStopsAndStarts freezes the node's kubelet: the node lifecycle
// controller marks the node not ready and taints it; thawed, the node is
// Ready again and the taints go.
func kubeletStopsAndStarts(t *testing.T, cs kubernetes.Interface, node string) {
	out, _ := exec.Command("pgrep", "-f", "kubelet.*--hostname-override="+node).Output()
	pids := strings.Fields(string(out))
	if len(pids) != 1 {
		t.Fatalf("kubelet processes of %s: %v", node, pids)
	}
	pid, _ := strconv.Atoi(pids[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	stopped := time.Now()
	unreachable := func(n *corev1.Node) bool {
		return slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == corev1.TaintNodeUnreachable })
	}
	waitFor(t, 90*time.Second, "node not ready and tainted unreachable", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && !nodeReady(n) && unreachable(n), nil
	})
	t.Logf("node %s not ready and tainted %s after %v", node, corev1.TaintNodeUnreachable, time.Since(stopped).Round(100*time.Millisecond))
	syscall.Kill(pid, syscall.SIGCONT)
	thawed = true
	started := time.Now()
	waitFor(t, 90*time.Second, "node Ready and untainted", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeReady(n) && !unreachable(n), nil
	})
	t.Logf("node %s Ready and untainted %v after its kubelet started again", node, time.Since(started).Round(100*time.Millisecond))
}

// realNodesUpgrade upgrades the cluster to the newer version: each real
// node is drained and its kubelet and kube-proxy replaced by the newer
// version's; then the workload (pinned to its node, so Pending while that
// node is drained) runs again and its Service answers a new client.
func realNodesUpgrade(t *testing.T, cs kubernetes.Interface, kc, cluster, image string, nodes []string, serviceIP string) {
	start := time.Now()
	mustFlotilla(t, "cluster", "upgrade", cluster, "--version", newer, "--wait", "--timeout", "5m")
	t.Logf("upgrade of the control plane, 1 simulated and %d real nodes to %s: %v", len(nodes), newer, time.Since(start).Round(100*time.Millisecond))
	oldBin, err := kubebin.Binary(context.Background(), older, nil)
	if err != nil {
		t.Fatal(err)
	}
	if left := pids(realnode.StateRoot, oldBin); len(left) > 0 {
		t.Fatalf("processes of real nodes still run %s's binary after the upgrade: %v", older, left)
	}
	if proxies := pids(realnode.StateRoot, " kube-proxy "); len(proxies) != len(nodes) {
		t.Fatalf("kube-proxy processes after the upgrade: %v; want %d", proxies, len(nodes))
	}
	for _, nn := range nodes {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), nn, metav1.GetOptions{})
		if err != nil || n.Status.NodeInfo.KubeletVersion != newer || !nodeReady(n) || n.Spec.Unschedulable {
			t.Fatalf("node %s after the upgrade: %v %+v; want Ready, schedulable, kubelet %s", nn, err, n.Status.NodeInfo, newer)
		}
	}
	if kubelets := pids(realnode.StateRoot, " kubelet "); len(kubelets) != len(nodes) {
		t.Fatalf("kubelet processes after the upgrade: %v; want %d", kubelets, len(nodes))
	}
	waitFor(t, 2*time.Minute, "web Available again", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2 && d.Status.UpdatedReplicas == 2, nil
	})
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client-after-upgrade", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelHostname: nodes[1]}, Containers: []corev1.Container{{Name: "hello", Image: image, Args: []string{"serve"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the Service answering a pod started after the upgrade", func(ctx context.Context) (bool, error) {
		out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kc, "exec", client.Name, "--", "/hello", "get", "http://"+serviceIP+"/").CombinedOutput()
		return err == nil && strings.HasPrefix(string(out), "hello from web-"), nil
	})
}

// portForward forwards a local port to pod's 8080 (kubectl flags before
// the pod) and returns what it answers there.
func portForward(t *testing.T, kc string, flagsAndPod ...string) string {
	t.Helper()
	pod := flagsAndPod[len(flagsAndPod)-1]
	args := append([]string{"--kubeconfig", kc}, flagsAndPod[:len(flagsAndPod)-1]...)
	cmd := exec.Command("kubectl", append(args, "port-forward", "pod/"+pod, ":8080")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("port-forward: %v", err)
	}
	m := regexp.MustCompile(`127\.0\.0\.1:(\d+) ->`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("port-forward said %q", line)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func kubectl(t *testing.T, kc string, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hostKernel(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// readNetwork is the node network of made cluster name.
func readNetwork(t *testing.T, name string) realnode.Network {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(clusters.Dir(name), "network.json"))
	if err != nil {
		t.Fatalf("cluster %s has no node network: %v", name, err)
	}
	var n realnode.Network
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sandboxedPod runs the workload in the sandboxed runtime class: it
// serves, and the kernel it sees is not the host's.
func sandboxedPod(t *testing.T, cs kubernetes.Interface, kc, image, host string) {
	ctx := context.Background()
	waitFor(t, time.Minute, "the sandboxed RuntimeClass offered", func(ctx context.Context) (bool, error) {
		rc, err := cs.NodeV1().RuntimeClasses().Get(ctx, sandbox.RuntimeClass, metav1.GetOptions{})
		return err == nil && rc.Handler == sandbox.Handler, nil
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "boxed", Namespace: "default"},
		Spec: corev1.PodSpec{
			RuntimeClassName: ptr.To(sandbox.RuntimeClass),
			NodeSelector:     map[string]string{realnode.Label: "true"},
			Containers:       []corev1.Container{{Name: "hello", Image: image, Args: []string{"serve"}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the sandboxed pod Running", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "boxed", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	inside := strings.TrimSpace(kubectl(t, kc, "exec", "boxed", "--", "/hello", "uname"))
	if inside == "" || inside == host {
		t.Fatalf("the sandboxed pod sees kernel %q, the host runs %q", inside, host)
	}
	t.Logf("kernel inside the sandboxed pod: %s; the host's: %s", inside, host)
	body := kubectl(t, kc, "exec", "client", "--", "/hello", "get", "http://"+podIP(t, cs, "boxed")+":8080/")
	if !strings.Contains(body, "hello from boxed (kernel "+inside+")") {
		t.Fatalf("the sandboxed pod answered another pod %q", body)
	}
}

func podIP(t *testing.T, cs kubernetes.Interface, name string) string {
	p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Status.PodIP
}

// sandboxRequired sets a security policy on a workspace that requires the
// sandboxed RuntimeClass: the member's apiserver refuses the workspace's
// pods without it, and runs those with it; other namespaces are free.
func sandboxRequired(t *testing.T, cs kubernetes.Interface, cluster, image string) {
	ctx := context.Background()
	mustFlotilla(t, "workspace", "create", "boxes")
	mustFlotilla(t, "namespace", "create", "boxes", "--cluster", cluster, "--workspace", "boxes")
	if _, errOut, err := flotilla("policy", "create", "strict", "--type", "security", "--workspace", "boxes", "--level", "restricted"); err == nil || !strings.Contains(errOut, "on a workspace, only one that requires a runtime class") {
		t.Fatalf("a Pod Security level on a workspace: %v %s", err, errOut)
	}
	mustFlotilla(t, "policy", "create", "boxed-only", "--type", "security", "--workspace", "boxes", "--require-runtime-class", sandbox.RuntimeClass)
	defer flotilla("policy", "delete", "boxed-only")
	pod := func(name string, class *string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "boxes"},
			Spec: corev1.PodSpec{
				RuntimeClassName: class,
				NodeSelector:     map[string]string{realnode.Label: "true"},
				Containers:       []corev1.Container{{Name: "hello", Image: image, Args: []string{"serve"}}},
			},
		}
	}
	var refusal error
	waitFor(t, time.Minute, "a pod without the sandbox refused in the workspace", func(ctx context.Context) (bool, error) {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "boxes", metav1.GetOptions{}); err != nil {
			return false, nil
		}
		_, refusal = cs.CoreV1().Pods("boxes").Create(ctx, pod("plain", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return refusal != nil, nil
	})
	if !strings.Contains(refusal.Error(), "pods must run in the RuntimeClass sandboxed") {
		t.Fatalf("refused with %v", refusal)
	}
	if _, err := cs.CoreV1().Pods("boxes").Create(ctx, pod("boxed", ptr.To(sandbox.RuntimeClass)), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a sandboxed pod in the workspace: %v", err)
	}
	waitFor(t, 2*time.Minute, "the workspace's sandboxed pod Running", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("boxes").Get(ctx, "boxed", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	free := pod("free", nil)
	free.Namespace = "default"
	if _, err := cs.CoreV1().Pods("default").Create(ctx, free, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pod outside the workspace refused: %v", err)
	}
}
