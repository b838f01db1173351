package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv"
)

// admin reaches cluster through the hub as the hub's admin.
func admin(cluster string) *rest.Config {
	c := rest.CopyConfig(env.Hub.Config)
	c.Host += fv1.ProxyPath(cluster)
	c.QPS, c.Burst = -1, 0
	return c
}

// raw sends method path (on cluster's apiserver) through the hub as its
// admin and returns the status and body.
func raw(t *testing.T, cluster, method, path string, body []byte) (int, string) {
	t.Helper()
	rt, err := rest.TransportFor(env.Hub.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, env.Hub.Config.Host+fv1.ProxyPath(cluster)+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: rt, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// A Status's message, unescaped, or the body as it is.
	var status metav1.Status
	if json.Unmarshal(b, &status) == nil && status.Kind == "Status" {
		return resp.StatusCode, status.Message
	}
	return resp.StatusCode, string(b)
}

// TestBadRequestsAreRefusedAtTheHub: an unknown cluster, a name that is no
// cluster's and a body larger than the hub carries get clear answers from
// the hub, without reaching any member.
func TestBadRequestsAreRefusedAtTheHub(t *testing.T) {
	cases := []struct {
		cluster, method, path string
		body                  []byte
		code                  int
		want                  string
	}{
		{"nowhere", "GET", "/api/v1/namespaces", nil, 404, `cluster "nowhere" is not attached to this hub`},
		{"Not_A_Name", "GET", "/api", nil, 400, "is not a cluster name"},
		{"east", "POST", "/api/v1/namespaces/default/configmaps", bytes.Repeat([]byte("x"), 4<<20), 413, "larger than"},
	}
	for _, c := range cases {
		code, body := raw(t, c.cluster, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s in %s: %d %s; want %d with %q", c.method, c.path, c.cluster, code, body, c.code, c.want)
		}
	}
}

// TestDisconnectedAndRestartedAgents: with its agent stopped a cluster
// answers 503 saying the agent is not connected and since when; an agent
// killed during a watch ends the watch cleanly, and once it is back the
// next request succeeds.
func TestDisconnectedAndRestartedAgents(t *testing.T) {
	ctx := context.Background()
	west := kubernetes.NewForConfigOrDie(admin("west"))
	if _, err := west.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	agents["west"].Stop()
	var msg string
	waitFor(t, 10*time.Second, "west unavailable", func(context.Context) (bool, error) {
		code, body := raw(t, "west", "GET", "/api/v1/namespaces", nil)
		msg = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "agent is not connected"), nil
	})
	if !strings.Contains(msg, "last heard from at") {
		t.Errorf("the 503 does not say since when: %s", msg)
	}
	restart(t, "west")

	// A watch through east's tunnel ends when the agent dies.
	watchEndsWhen(t, "east's agent was killed", 30*time.Second, agents["east"].Kill)
	restart(t, "east")
}

// watchEndsWhen opens a watch through the hub on east and fails t unless
// it ends within d of kill.
func watchEndsWhen(t *testing.T, what string, d time.Duration, kill func()) {
	t.Helper()
	w, err := kubernetes.NewForConfigOrDie(admin("east")).CoreV1().ConfigMaps("default").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	drained := make(chan struct{})
	go func() {
		for range w.ResultChan() {
		}
		close(drained)
	}()
	kill()
	select {
	case <-drained:
	case <-time.After(d):
		t.Fatalf("the watch through the hub did not end when %s", what)
	}
}

// restart starts name's agent again with the identity it kept.
func restart(t *testing.T, name string) {
	t.Helper()
	old := agents[name]
	a := testenv.AgentProcess(name, members[name], old.Dir)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	agents[name] = a
	cs := kubernetes.NewForConfigOrDie(admin(name))
	waitFor(t, 30*time.Second, name+" reachable again", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
}

// TestSlowClientDoesNotStallOthers: a client that stops reading a large
// list holds its own stream of the tunnel, not the tunnel: other requests
// to the same cluster keep being answered.
func TestSlowClientDoesNotStallOthers(t *testing.T) {
	ctx := context.Background()
	member := members["east"].Clientset
	if _, err := member.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta("bulk")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer member.CoreV1().Namespaces().Delete(ctx, "bulk", metav1.DeleteOptions{})
	data := map[string]string{"v": strings.Repeat("x", 16<<10)}
	for i := range 200 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: data}
		if _, err := member.CoreV1().ConfigMaps("bulk").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// 3 MB the slow client does not read.
	rt, _ := rest.TransportFor(env.Hub.Config)
	req, _ := http.NewRequest("GET", env.Hub.Config.Host+fv1.ProxyPath("east")+"/api/v1/namespaces/bulk/configmaps", nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	resp.Body.Read(make([]byte, 1))

	cs := kubernetes.NewForConfigOrDie(admin("east"))
	for range 20 {
		start := time.Now()
		if _, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a request took %s while another client stalled its list", d)
		}
	}
}

// TestHubNeverDialsMembers: requests reach members only over the
// connections agents open. While requests flow, the hub process holds no
// connection to a member's apiserver; the agents, as a check that this can
// be seen, do.
func TestHubNeverDialsMembers(t *testing.T) {
	w, err := kubernetes.NewForConfigOrDie(admin("east")).CoreV1().ConfigMaps("default").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for name, m := range members {
		port := strings.TrimPrefix(m.Config.Host[strings.LastIndex(m.Config.Host, ":"):], ":")
		if n := connectionsTo(t, env.Hub.PID(), port); n != 0 {
			t.Errorf("the hub holds %d connections to %s's apiserver (port %s)", n, name, port)
		}
		if n := connectionsTo(t, agents[name].PID(), port); n == 0 {
			t.Errorf("%s's agent holds no connection to its apiserver (port %s): the check sees nothing", name, port)
		}
	}
}

// connectionsTo counts pid's TCP connections to 127.0.0.1:port, from its
// sockets' inodes in /proc.
func connectionsTo(t *testing.T, pid int, port string) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			// rem_address is HEXIP:HEXPORT.
			if _, remPort, ok := strings.Cut(f[2], ":"); ok && hexPort(remPort) == port {
				n++
			}
		}
	}
	return n
}

func hexPort(h string) string {
	var p int
	fmt.Sscanf(h, "%X", &p)
	return fmt.Sprint(p)
}

// TestExecReachesTheMember: an exec (a protocol upgrade) passes through the
// hub to the member's apiserver, which answers as it does directly: these
// members' nodes are simulated, so there is no kubelet to run it.
func TestExecReachesTheMember(t *testing.T) {
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "exec-target"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}}}
	if _, err := members["east"].Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer members["east"].Clientset.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{})
	kc := filepath.Join(t.TempDir(), "east.kubeconfig")
	write(t, kc, flotilla(t, "kubeconfig", "east", "--hub-kubeconfig", env.Hub.Kubeconfig))
	waitFor(t, 30*time.Second, "the pod scheduled", func(ctx context.Context) (bool, error) {
		p, err := members["east"].Clientset.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != "", nil
	})
	through, _ := kubectl(kc, "--context", "east", "exec", pod.Name, "-n", "default", "--", "uname", "-r")
	direct, _ := kubectl(members["east"].Kubeconfig, "exec", pod.Name, "-n", "default", "--", "uname", "-r")
	// The member's own answer names its kubelet's exec endpoint.
	if !strings.Contains(through, "/exec/default/exec-target/c") || !strings.Contains(direct, "/exec/default/exec-target/c") {
		t.Fatalf("exec through the hub:\n%s\ndirect:\n%s", through, direct)
	}
}

// TestHubRestartEndsWatchesCleanly: a watch through the hub ends when the
// hub stops (so kubectl lists again), and once the hub is back the agents'
// new tunnels carry requests again.
func TestHubRestartEndsWatchesCleanly(t *testing.T) {
	watchEndsWhen(t, "the hub was killed", 10*time.Second, env.Hub.Kill)
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"east", "west"} {
		cs := kubernetes.NewForConfigOrDie(admin(name))
		waitFor(t, 60*time.Second, name+" reachable after the hub's restart", func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err == nil, nil
		})
	}
}
