package lifecycle

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubebin"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/provider/local"
	"flotilla.dev/flotilla/internal/sandbox"
	"flotilla.dev/flotilla/internal/testenv"
)

var (
	env *testenv.Env
	bin string
	// clusters is the hub's local provider: how the tests find, and in
	// the end stop, what the hub started (supervisors outlive a killed hub).
	clusters *local.Provider
)

// The older version a test cluster starts at, and the one it upgrades to.
const (
	older = "v1.36.3"
	newer = "v1.37.2"
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if bin, err = testenv.Binary(); err != nil {
		return 1, err
	}
	// The older version's components are built once per machine (CI builds
	// them before the tests); a first build here takes minutes.
	if _, err := kubebin.Binary(context.Background(), older, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }); err != nil {
		return 1, err
	}
	// So is the sandboxed runtime class of real nodes (gVisor).
	if _, err := sandbox.Build(context.Background(), func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }); err != nil {
		return 1, err
	}
	// Agents run as pods of real nodes reach the hub at a host address
	// that is not loopback.
	var hubArgs []string
	if ip := hostIP(); ip != "" {
		hubArgs = []string{"--agent-address", ip}
	}
	if env, err = testenv.Start(testenv.Options{HubArgs: hubArgs}); err != nil {
		return 1, err
	}
	clusters = &local.Provider{Root: filepath.Join(env.Hub.Dir, "clusters")}
	defer env.Stop()
	// Stopped by PID whatever happened to the hub.
	defer clusters.StopAll()
	return m.Run(), nil
}

// cliTimeout bounds one CLI run.
const cliTimeout = 5 * time.Minute

// flotilla runs the CLI against the hub and returns its stdout and stderr.
func flotilla(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "FLOTILLA_HUB_KUBECONFIG="+env.Hub.Kubeconfig)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustFlotilla is flotilla that fails the test on a non-zero exit.
func mustFlotilla(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := flotilla(args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\n%s%s", strings.Join(args, " "), err, errOut, supervisorLogs())
	}
	return out
}

// supervisorLogs is the end of every supervisor's log.
func supervisorLogs() string {
	names, _ := clusters.Clusters()
	var b strings.Builder
	for _, n := range names {
		log, _ := os.ReadFile(filepath.Join(clusters.Dir(n), "logs", "supervisor.log"))
		fmt.Fprintf(&b, "--- supervisor of %s:\n%s\n", n, log[max(0, len(log)-2000):])
	}
	return b.String()
}

// member is a clientset of a made cluster, from 'flotilla cluster kubeconfig'.
func member(t *testing.T, name string) (*kubernetes.Clientset, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, []byte(mustFlotilla(t, "cluster", "kubeconfig", name)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, path
}

func cluster(t *testing.T, name string) *fv1.Cluster {
	t.Helper()
	var c fv1.Cluster
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, supervisorLogs())
	}
}

// processesOf counts the running processes whose command line mentions
// what and dir.
func processesOf(t *testing.T, dir, what string) int {
	t.Helper()
	return len(pids(dir, what))
}

// kubectlHub runs kubectl against the hub and returns its combined output.
func kubectlHub(args ...string) (string, error) {
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", env.Hub.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}
