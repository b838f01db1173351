package access

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
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv"
)

var (
	env    *testenv.Env
	issuer *oidcIssuer
	bin    string
	// agents run the two attached clusters, east (in group team-a) and west.
	agents  = map[string]*testenv.Process{}
	members = map[string]*testenv.Process{}
	tmp     string
)

// TestMain starts an OIDC issuer, a hub that trusts it, two member
// clusters, and attaches them as east and west.
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
	if tmp, err = os.MkdirTemp("", "flotilla-access-"); err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	if issuer, err = startIssuer(); err != nil {
		return 1, err
	}
	defer issuer.Close()
	authn := filepath.Join(tmp, "authentication.yaml")
	if err := os.WriteFile(authn, issuer.authenticationConfig(), 0o600); err != nil {
		return 1, err
	}
	env, err = testenv.Start(testenv.Options{Clusters: 2, Nodes: 1, HubArgs: []string{"--authentication-config", authn}})
	if err != nil {
		return 1, err
	}
	defer env.Stop()
	ctx := context.Background()
	if err := env.Hub.Client.Create(ctx, &fv1.ClusterGroup{ObjectMeta: objectMeta("team-a")}); err != nil {
		return 1, err
	}
	for i, name := range []string{"east", "west"} {
		group := map[string]string{"east": "team-a"}[name]
		members[name] = env.Clusters[i]
		if agents[name], err = env.AttachAgent(ctx, name, group, env.Clusters[i], tmp); err != nil {
			return 1, err
		}
	}
	// Tests restart agents: stop the ones running at the end.
	defer func() {
		for _, a := range agents {
			a.Stop()
		}
	}()
	for name := range agents {
		if err := waitHealthy(ctx, name); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}

func waitHealthy(ctx context.Context, name string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return c.Status.Health == fv1.HealthHealthy, nil
	})
}

// flotilla runs the binary and returns its stdout; it fails the test with
// stderr on a non-zero exit.
func flotilla(t *testing.T, args ...string) string {
	t.Helper()
	out, err := flotillaErr(args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func flotillaErr(args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return string(out), nil
}

// kubectl runs kubectl with kubeconfig and returns its combined output.
func kubectl(kubeconfig string, args ...string) (string, error) {
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
