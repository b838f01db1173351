package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv"
)

var (
	env *testenv.Env
	bin string
	tmp string
	// src and dst are the two attached clusters; agents runs their agents.
	members = map[string]*testenv.Process{}
	agents  = map[string]*testenv.Process{}
)

// TestMain starts a hub and two member clusters, src and dst, both in
// group "pair", with agents.
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
	if tmp, err = os.MkdirTemp("", "flotilla-backup-"); err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	if env, err = testenv.Start(testenv.Options{Clusters: 2, Nodes: 1}); err != nil {
		return 1, err
	}
	defer env.Stop()
	ctx := context.Background()
	if err := env.Hub.Client.Create(ctx, &fv1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "pair"}}); err != nil {
		return 1, err
	}
	for i, name := range []string{"src", "dst"} {
		members[name] = env.Clusters[i]
		if agents[name], err = env.AttachAgent(ctx, name, "pair", env.Clusters[i], tmp); err != nil {
			return 1, err
		}
	}
	defer func() {
		for _, a := range agents {
			a.Stop()
		}
	}()
	return m.Run(), nil
}

// flotilla runs the binary against the hub and returns its stdout; it
// fails the test with stderr on a non-zero exit.
func flotilla(t *testing.T, args ...string) string {
	t.Helper()
	out, err := flotillaErr(args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\n%s", strings.Join(args, " "), err, agentLogs())
	}
	return out
}

// agentLogs is the end of each agent's log, to show why a job failed.
func agentLogs() string {
	var b strings.Builder
	for name, a := range agents {
		log := a.Log()
		fmt.Fprintf(&b, "--- agent %s:\n%s\n", name, log[max(0, len(log)-3000):])
	}
	return b.String()
}

// cliTimeout bounds one CLI run: --wait returns when a job ends.
const cliTimeout = 3 * time.Minute

func flotillaErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "FLOTILLA_HUB_KUBECONFIG="+env.Hub.Kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// kubectl runs kubectl against member and returns its combined output.
func kubectl(t *testing.T, member *testenv.Process, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", member.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// apply applies manifest to member.
func apply(t *testing.T, member *testenv.Process, manifest string) {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", member.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// backupOf reads Backup name from the hub.
func backupOf(t *testing.T, name string) *fv1.Backup {
	t.Helper()
	var b fv1.Backup
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func restoreOf(t *testing.T, name string) *fv1.Restore {
	t.Helper()
	var r fv1.Restore
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// agentProcess is an agent of this package's hub, not started.
var agentProcess = testenv.AgentProcess
