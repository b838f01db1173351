package localcluster_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"flotilla.dev/flotilla/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{Clusters: 1, Nodes: 3, NoHub: true})
	if err != nil {
		println(err.Error())
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestNodesReadyWithCapacity(t *testing.T) {
	nodes, err := env.Clusters[0].Clientset.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("want 3 nodes, got %d", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		if n.Status.Capacity.Cpu().Cmp(resource.MustParse("4")) != 0 || n.Status.Capacity.Memory().Cmp(resource.MustParse("16Gi")) != 0 {
			t.Errorf("node %s capacity %v", n.Name, n.Status.Capacity)
		}
		if len(n.Spec.Taints) != 0 {
			t.Errorf("node %s has taints %v", n.Name, n.Spec.Taints)
		}
	}
}

func TestDeploymentPodsRunSpreadOverNodes(t *testing.T) {
	c := env.Clusters[0]
	kubectl(t, c.Kubeconfig, "create", "namespace", "web")
	kubectl(t, c.Kubeconfig, "-n", "web", "create", "deployment", "web", "--image=nginx", "--replicas=3")
	ctx := context.Background()
	var pods *corev1.PodList
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		pods, err = c.Clientset.CoreV1().Pods("web").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && podReady(&p) {
				running++
			}
		}
		return running == 3 && len(pods.Items) == 3, nil
	})
	if err != nil {
		t.Fatalf("3 Running pods: %v; got %s", err, kubectl(t, c.Kubeconfig, "-n", "web", "get", "pods", "-o", "wide"))
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		nodes[p.Spec.NodeName] = true
		if p.Status.PodIP == "" {
			t.Errorf("pod %s has no IP", p.Name)
		}
	}
	if len(nodes) < 2 {
		t.Errorf("pods not spread: all on %v", nodes)
	}
	out := kubectl(t, c.Kubeconfig, "-n", "web", "get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}")
	if out != "3" {
		t.Errorf("deployment available replicas = %q, want 3", out)
	}

	// Deleting the namespace removes everything in it, pods included.
	kubectl(t, c.Kubeconfig, "delete", "namespace", "web", "--wait=false")
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.Clientset.CoreV1().Namespaces().Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace web not deleted: %v\n%s", err, kubectl(t, c.Kubeconfig, "get", "pods", "-A"))
	}
	left, _ := c.Clientset.CoreV1().Pods("web").List(ctx, metav1.ListOptions{})
	if len(left.Items) != 0 {
		t.Errorf("%d pods left after namespace deletion", len(left.Items))
	}
}

func TestPodLargerThanAnyNodeStaysPending(t *testing.T) {
	c := env.Clusters[0]
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "nginx",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5")}},
		}}},
	}
	if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c.Clientset.CoreV1().Pods("default").Delete(ctx, "huge", metav1.DeleteOptions{})
	// The scheduler must have looked at it and said why it cannot place it.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && strings.Contains(cond.Message, "Insufficient cpu") {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod not reported unschedulable: %v", err)
	}
	p, _ := c.Clientset.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
	if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
		t.Errorf("phase %s node %q, want Pending and unbound", p.Status.Phase, p.Spec.NodeName)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	c := testenv.NewCluster(dir, "restart", 1)
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keep", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := c.Clientset.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Clientset.CoreV1().ConfigMaps("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("configmap after restart: %v %v", got, err)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
