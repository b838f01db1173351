package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// failedWith waits until cluster name is Failed and returns its reason.
func failedWith(t *testing.T, name string) string {
	t.Helper()
	var msg string
	waitFor(t, time.Minute, name+" Failed", func(context.Context) (bool, error) {
		st := cluster(t, name).Status.Lifecycle
		if st == nil || st.Phase != fv1.LifecycleFailed {
			return false, nil
		}
		msg = meta.FindStatusCondition(st.Conditions, fv1.ConditionReady).Message
		return true, nil
	})
	return msg
}

func deleteCluster(t *testing.T, name string) {
	t.Helper()
	mustFlotilla(t, "cluster", "delete", name, "--wait", "--timeout", "2m")
	if n := processesOf(t, clusters.Dir(name), ""); n != 0 {
		t.Errorf("%d processes of %s still run after delete", n, name)
	}
}

// A port the control plane needs is taken: the cluster is Failed with the
// port and the component named, --wait says so and exits non-zero, and the
// cluster starts once the port is free.
func TestPortTakenFailsThenRecovers(t *testing.T) {
	const name = "ports"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The apiserver's port was recorded by an earlier run of the cluster.
	dir := clusters.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ports, _ := json.Marshal(map[string]int{"apiserver-0": port})
	if err := os.WriteFile(filepath.Join(dir, "ports.json"), ports, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := flotilla("cluster", "create", name, "--version", newer, "--nodes", "1", "--wait", "--timeout", "1m")
	if err == nil || !strings.Contains(errOut, fmt.Sprintf("port %d (apiserver-0) is in use", port)) {
		t.Fatalf("create --wait with the apiserver's port taken: %v\n%s", err, errOut)
	}
	if msg := failedWith(t, name); !strings.Contains(msg, fmt.Sprintf("port %d", port)) {
		t.Fatalf("Failed condition %q names no port", msg)
	}
	ln.Close()
	waitFor(t, time.Minute, name+" Ready once the port is free", func(context.Context) (bool, error) {
		st := cluster(t, name).Status.Lifecycle
		return st.Phase == fv1.LifecycleReady, nil
	})
	deleteCluster(t, name)
}

// A corrupt etcd data dir: etcd exits at each start, and the cluster is
// Failed naming etcd and its log.
func TestCorruptDataDirFailsNamingTheLog(t *testing.T) {
	const name = "corrupt"
	member := filepath.Join(clusters.Dir(name), "etcd-0", "member")
	for _, sub := range []string{"snap", "wal"} {
		if err := os.MkdirAll(filepath.Join(member, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	garbage := []byte(strings.Repeat("not an etcd file ", 4096))
	for _, f := range []string{"snap/db", "wal/0000000000000000-0000000000000000.wal"} {
		if err := os.WriteFile(filepath.Join(member, f), garbage, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustFlotilla(t, "cluster", "create", name, "--version", newer, "--nodes", "1")
	msg := failedWith(t, name)
	if !strings.Contains(msg, "etcd-0 exited") || !strings.Contains(msg, filepath.Join(clusters.Dir(name), "logs", "etcd-0.log")) {
		t.Fatalf("Failed condition %q does not name etcd-0 and its log", msg)
	}
	deleteCluster(t, name)
}

// Bad specs are refused by the hub's API with the same words for kubectl
// and the CLI; clusters Flotilla only attached cannot be deleted, scaled
// or upgraded through it.
func TestBadInputIsRefused(t *testing.T) {
	ctx := context.Background()
	const name = "checks"
	mustFlotilla(t, "cluster", "create", name, "--version", older, "--nodes", "1")
	defer deleteCluster(t, name)

	refused := []struct{ patch, want string }{
		{`{"spec":{"lifecycle":{"nodePools":[{"name":"workers","replicas":-1}]}}}`, "should be greater than or equal to 0"},
		{`{"spec":{"lifecycle":{"version":"v1.38.0"}}}`, "one minor version at a time"},
		{`{"spec":{"lifecycle":{"version":"v1.35.0"}}}`, "cannot be downgraded"},
		{`{"spec":{"lifecycle":{"version":"v1.37.9"}}}`, "is not a version local clusters run"},
		{`{"spec":{"lifecycle":{"version":"1.37"}}}`, "spec.lifecycle.version"},
		{`{"spec":{"lifecycle":{"controlPlane":{"replicas":3}}}}`, "control-plane replicas cannot change"},
		{`{"spec":{"lifecycle":{"provider":"clusterapi"}}}`, "provider cannot change"},
		{`{"spec":{"lifecycle":null}}`, "spec.lifecycle is set when a cluster is created"},
	}
	for _, r := range refused {
		out, err := kubectlHub("patch", "cluster", name, "--type=merge", "-p", r.patch)
		if err == nil || !strings.Contains(out, r.want) {
			t.Errorf("kubectl patch %s: %v: %s (want %q)", r.patch, err, out, r.want)
		}
	}
	if _, errOut, err := flotilla("cluster", "scale", name, "--nodes", "-2"); err == nil || !strings.Contains(errOut, "should be greater than or equal to 0") {
		t.Errorf("scale to -2: %v %s", err, errOut)
	}
	if _, errOut, err := flotilla("cluster", "create", "new-one", "--version", "v1.35.0"); err == nil || !strings.Contains(errOut, "is not a version local clusters run") {
		t.Errorf("create at an unknown version: %v %s", err, errOut)
	}

	// An attached cluster.
	mustFlotilla(t, "cluster", "attach", "attached", "-o", "kubeconfig")
	defer mustFlotilla(t, "cluster", "detach", "attached", "--force")
	if _, errOut, err := flotilla("cluster", "delete", "attached"); err == nil || !strings.Contains(errOut, "flotilla cluster detach attached") {
		t.Errorf("delete of an attached cluster: %v %s", err, errOut)
	}
	if _, errOut, err := flotilla("cluster", "upgrade", "attached", "--version", newer); err == nil || !strings.Contains(errOut, "not made by Flotilla") {
		t.Errorf("upgrade of an attached cluster: %v %s", err, errOut)
	}
	out, err := kubectlHub("patch", "cluster", "attached", "--type=merge", "-p", `{"spec":{"lifecycle":{"provider":"local","version":"v1.37.2","nodePools":[{"name":"a","replicas":1}]}}}`)
	if err == nil || !strings.Contains(out, "spec.lifecycle is set when a cluster is created") {
		t.Errorf("turning an attached cluster into a made one: %v %s", err, out)
	}
	var c fv1.Cluster
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "attached"}, &c); err != nil || c.Spec.Lifecycle != nil {
		t.Errorf("attached cluster changed: %v %+v", err, c.Spec.Lifecycle)
	}
}
