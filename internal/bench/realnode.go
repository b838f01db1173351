package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/images"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/provider/local"
	"flotilla.dev/flotilla/internal/realnode"
)

// RealNodeOptions say what bench realnode measures.
type RealNodeOptions struct {
	// Pods started one after another on a real node, per runtime class.
	Pods int
	// Classes are the runtime classes measured ("" is the node's default,
	// runc).
	Classes []string
}

// RealNode measures real nodes: a hub makes a cluster with one real node
// (create → Healthy), scales its real pool to two (the new node's start →
// Ready), starts o.Pods pods one at a time on a real node for each runtime
// class (create → Running), and reads the memory of a node's kubelet,
// runtime and kube-proxy and of each class's pods. It prints numbers and
// asserts nothing.
func RealNode(ctx context.Context, out, progress io.Writer, o RealNodeOptions) error {
	if err := realnode.Check(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flotilla-bench-realnode-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	quietLogs()
	logf := progressLog(progress)
	lf, err := startLocal(tmp, 0, 0)
	if err != nil {
		return err
	}
	defer lf.stop()
	b := &lifecycleBench{cl: lf.cl, clusters: &local.Provider{Root: filepath.Join(tmp, "hub", "clusters")}, logf: logf}
	defer b.clusters.StopAll()
	const name = "real"
	var res realNodeResult
	logf("create %s with one real node", name)
	start := time.Now()
	c := &fv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fv1.ClusterSpec{Lifecycle: &fv1.ClusterLifecycle{
			Provider: fv1.ProviderLocal, Version: kubebin.Embedded(),
			NodePools: []fv1.NodePool{{Name: "real", Replicas: 1, Real: true}},
		}},
	}
	if err := b.cl.Create(ctx, c); err != nil {
		return err
	}
	if err := b.until(ctx, name, func(c *fv1.Cluster) bool { return done(c) && c.Status.Health == fv1.HealthHealthy }); err != nil {
		return err
	}
	res.create = time.Since(start)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(mustKubeconfig(b.clusters, name))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	logf("scale the real pool to two")
	if res.nodeReady, err = b.addRealNode(ctx, cs, name); err != nil {
		return err
	}
	if res.nodeMemory, err = nodeMemory(name + "-real-1"); err != nil {
		return err
	}
	ref, err := images.Ref(images.Hello)
	if err != nil {
		return err
	}
	for _, class := range o.Classes {
		logf("start %d pods of runtime class %q", o.Pods, cmp.Or(class, "default"))
		r, err := podStarts(ctx, cs, ref, class, o.Pods)
		if err != nil {
			return err
		}
		res.classes = append(res.classes, r)
	}
	printRealNode(out, &res)
	_, err = b.delete(ctx, name)
	return err
}

type realNodeResult struct {
	create, nodeReady time.Duration
	nodeMemory        procs.Memory
	classes           []classResult
}

// classResult is one runtime class: its pods' start times, and the memory
// of one idle pod (its processes, and its runtime shim).
type classResult struct {
	class      string
	starts     []time.Duration
	pod, shim  procs.Memory
	podKernel  string
	hostKernel string
}

// addRealNode scales the real pool to two and times it until the new
// node is Ready.
func (b *lifecycleBench) addRealNode(ctx context.Context, cs kubernetes.Interface, name string) (time.Duration, error) {
	var c fv1.Cluster
	if err := b.cl.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
		return 0, err
	}
	c.Spec.Lifecycle.NodePools[0].Replicas = 2
	start := time.Now()
	if err := b.cl.Update(ctx, &c); err != nil {
		return 0, err
	}
	node := name + "-real-2"
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeIsReady(n), nil
	})
	return time.Since(start), err
}

// podStarts starts n pods of class one at a time on the real nodes and
// times each from create to Running; it then reads the last one's memory
// and the kernel it reports.
func podStarts(ctx context.Context, cs kubernetes.Interface, image, class string, n int) (classResult, error) {
	r := classResult{class: cmp.Or(class, "default")}
	var last *corev1.Pod
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("start-%s-%d", r.class, i), Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{realnode.Label: "true"},
				Containers:   []corev1.Container{{Name: "hello", Image: image, Args: []string{"serve"}}},
			},
		}
		if class != "" {
			pod.Spec.RuntimeClassName = &class
		}
		start := time.Now()
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return r, err
		}
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodRunning {
				last = p
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return r, fmt.Errorf("pod %s not Running: %w", pod.Name, err)
		}
		r.starts = append(r.starts, time.Since(start))
	}
	time.Sleep(5 * time.Second)
	var err error
	if r.pod, r.shim, err = podMemory(last); err != nil {
		return r, err
	}
	r.podKernel, err = podKernel(last)
	r.hostKernel = hostKernel()
	return r, err
}

// nodeMemory is the memory of node's kubelet, runtime and kube-proxy: the
// processes whose command line names the node's state directory, but for
// the runtime's shims, which belong to pods.
func nodeMemory(node string) (procs.Memory, error) {
	var total procs.Memory
	for _, pid := range pgrep("--hostname-override=" + node) {
		m, err := procs.TreeMemory(pid)
		if err != nil {
			return total, err
		}
		total.RSS, total.PSS = total.RSS+m.RSS, total.PSS+m.PSS
	}
	dir, err := stateDirOf(node)
	if err != nil {
		return total, err
	}
	for _, what := range []string{dir + "/containerd.toml", dir + "/kube-proxy.yaml"} {
		for _, pid := range pgrep(what) {
			m, err := procs.TreeMemory(pid)
			if err != nil {
				return total, err
			}
			total.RSS, total.PSS = total.RSS+m.RSS, total.PSS+m.PSS
		}
	}
	return total, nil
}

// stateDirOf finds node's state directory from its kubelet's flags.
func stateDirOf(node string) (string, error) {
	for _, pid := range pgrep("--hostname-override=" + node) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		for _, arg := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(arg, "--root-dir="); ok {
				return filepath.Dir(v), nil
			}
		}
	}
	return "", fmt.Errorf("no kubelet of node %s runs", node)
}

// podMemory is the memory of pod's processes and of its runtime shim.
func podMemory(pod *corev1.Pod) (inPod, shim procs.Memory, err error) {
	pids, err := realnode.PodPIDs(string(pod.UID))
	if err != nil {
		return inPod, shim, err
	}
	if len(pids) == 0 {
		return inPod, shim, fmt.Errorf("no processes of pod %s found", pod.Name)
	}
	for _, pid := range pids {
		m, err := procs.ProcessMemory(pid)
		if err != nil {
			continue
		}
		inPod.RSS, inPod.PSS = inPod.RSS+m.RSS, inPod.PSS+m.PSS
	}
	// The shim is the parent of the pod's first process (it reaps them).
	if ppid := parentOf(slices.Min(pids)); ppid > 1 {
		shim, err = procs.ProcessMemory(ppid)
	}
	return inPod, shim, err
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(fields[1])
	return p
}

// podKernel is the kernel release the pod's workload answers with, asked
// over the pod network (the host routes to every real node's pods).
func podKernel(pod *corev1.Pod) (string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + net.JoinHostPort(pod.Status.PodIP, "8080") + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_, k, ok := strings.Cut(strings.TrimSpace(string(b)), "(kernel ")
	if !ok {
		return "", fmt.Errorf("pod %s answered %q", pod.Name, b)
	}
	return strings.TrimSuffix(k, ")"), nil
}

func hostKernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func pgrep(pattern string) []int {
	out, _ := exec.Command("pgrep", "-f", "--", pattern).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
