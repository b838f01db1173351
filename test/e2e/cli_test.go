package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"flotilla.dev/flotilla/internal/testenv"
)

func flotilla(t *testing.T) string {
	t.Helper()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(flotilla(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "kubernetes v1.37.") || strings.Contains(string(out), "v0.0.0") {
		t.Fatalf("version output:\n%s", out)
	}
}

// Every bad input gives one line naming the problem and what to do, a
// non-zero exit and no stack trace.
func TestBadInput(t *testing.T) {
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.kubeconfig")
	os.WriteFile(corrupt, []byte("apiVersion: v1\nclusters: {this is: [not a kubeconfig"), 0o600)
	notADir := filepath.Join(tmp, "file")
	os.WriteFile(notADir, nil, 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	deadEtcd, _ := net.Listen("tcp", "127.0.0.1:0")
	deadEtcdURL := "http://" + deadEtcd.Addr().String()
	deadEtcd.Close()

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flag", []string{"hub", "--no-such-flag"}, []string{"unknown flag: --no-such-flag", "--help"}},
		{"data dir not writable", []string{"hub", "--data-dir", filepath.Join(notADir, "hub")}, []string{"data dir", "cannot be created", "--data-dir"}},
		{"port in use", []string{"hub", "--data-dir", filepath.Join(tmp, "h1"), "--port", busyPort}, []string{"port " + busyPort, "in use", "--port"}},
		{"etcd unreachable", []string{"hub", "--data-dir", filepath.Join(tmp, "h2"), "--etcd-servers", deadEtcdURL}, []string{"cannot reach etcd", deadEtcdURL, "--etcd-servers"}},
		{"corrupt kubeconfig", []string{"hub", "--data-dir", filepath.Join(tmp, "h3"), "--kubeconfig", corrupt}, []string{"kubeconfig", "not valid", "--kubeconfig"}},
		{"missing kubeconfig", []string{"hub", "--data-dir", filepath.Join(tmp, "h4"), "--kubeconfig", filepath.Join(tmp, "absent")}, []string{"does not exist", "--kubeconfig"}},
		{"no nodes", []string{"localcluster", "--data-dir", filepath.Join(tmp, "c1"), "--nodes", "0"}, []string{"--nodes must be at least 1"}},
		{"bad quantity", []string{"localcluster", "--node-cpu", "lots"}, []string{"--node-cpu", "lots"}},
		{"unknown command", []string{"hubb"}, []string{"unknown command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(flotilla(t), tc.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("exit 0; want failure")
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "flotilla: ") {
				t.Errorf("want one line starting 'flotilla: ', got:\n%s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
			if strings.Contains(msg+stdout.String(), "goroutine ") {
				t.Errorf("stack trace printed")
			}
		})
	}
}
