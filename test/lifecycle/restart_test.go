package lifecycle

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/datadir"
)

func readyAndHealthy(t *testing.T, name string) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) {
		c := cluster(t, name)
		st := c.Status.Lifecycle
		return st != nil && st.Phase == fv1.LifecycleReady && st.ObservedGeneration == c.Generation && c.Status.Health == fv1.HealthHealthy, nil
	}
}

// A hub SIGKILLed in the middle of a create, a scale and a delete
// finishes each on its restart with nothing started twice; a hub stopped
// politely stops its clusters and starts them again, state kept.
func TestHubKilledMidCreateScaleDelete(t *testing.T) {
	ctx := context.Background()
	const name = "resumed"
	dir := clusters.Dir(name)
	mustFlotilla(t, "cluster", "create", name, "--version", newer, "--nodes", "2")
	waitFor(t, time.Minute, "the supervisor started", func(context.Context) (bool, error) {
		_, held := datadir.Holder(dir)
		return held, nil
	})
	env.Hub.Kill()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, name+" made after the hub's restart", readyAndHealthy(t, name))
	for _, what := range []string{"localplane", "kube-apiserver", "etcd --name"} {
		if n := processesOf(t, dir, what); n != 1 {
			t.Errorf("%d %s processes of %s, want 1", n, what, name)
		}
	}

	// A polite stop stops the cluster; a start starts it again.
	cs, _ := member(t, name)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Hub.Stop()
	if n := processesOf(t, dir, ""); n != 0 {
		t.Errorf("%d processes of %s still run after the hub stopped", n, name)
	}
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, name+" serving again", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
		return err == nil, nil
	})

	// Killed in the middle of a scale.
	mustFlotilla(t, "cluster", "scale", name, "--nodes", "4")
	waitFor(t, time.Minute, "scaling under way", func(context.Context) (bool, error) {
		st := cluster(t, name).Status.Lifecycle
		return st.Phase == fv1.LifecycleScaling || len(nodes(t, cs)) > 2, nil
	})
	env.Hub.Kill()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, name+" scaled after the hub's restart", readyAndHealthy(t, name))
	if n := len(nodes(t, cs)); n != 4 {
		t.Errorf("%d nodes after scaling to 4 across a hub kill", n)
	}

	// Killed right after the delete is asked.
	mustFlotilla(t, "cluster", "delete", name)
	env.Hub.Kill()
	if err := env.Hub.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, name+" deleted after the hub's restart", func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &fv1.Cluster{})), nil
	})
	if n := processesOf(t, dir, ""); n != 0 {
		t.Errorf("%d processes of %s still run after its delete", n, name)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after the delete: %v", dir, err)
	}
}

// pids lists the processes whose command line mentions what and dir.
func pids(dir, what string) []string {
	out, _ := exec.Command("pgrep", "-f", what+".*"+dir).Output()
	return strings.Fields(string(out))
}

// A crashed component is restarted by its supervisor, and a crashed
// supervisor by the hub.
func TestCrashedComponentsAreRestarted(t *testing.T) {
	const name = "crashy"
	dir := clusters.Dir(name)
	mustFlotilla(t, "cluster", "create", name, "--version", newer, "--nodes", "1", "--wait", "--timeout", "2m")
	defer deleteCluster(t, name)
	cs, _ := member(t, name)
	serves := func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}
	for _, what := range []string{"kube-apiserver", "localplane"} {
		before := pids(dir, what)
		if len(before) != 1 {
			t.Fatalf("%s processes of %s: %v", what, name, before)
		}
		pid, _ := strconv.Atoi(before[0])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, what+" restarted", func(ctx context.Context) (bool, error) {
			now := pids(dir, what)
			return len(now) == 1 && now[0] != before[0], nil
		})
		waitFor(t, time.Minute, name+" serving after "+what+" crashed", serves)
	}
	waitFor(t, time.Minute, name+" Ready and Healthy", readyAndHealthy(t, name))
	if n := len(pids(dir, "kube-apiserver")); n != 1 {
		t.Errorf("%d apiservers of %s after the crashes", n, name)
	}
}
