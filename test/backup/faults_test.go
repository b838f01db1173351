package backup

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv/s3server"
)

const faultSrc = `
apiVersion: v1
kind: Namespace
metadata: {name: fault-src}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: victim, namespace: fault-src}
data: {state: intact}
`

func TestBackupFaults(t *testing.T) {
	apply(t, members["src"], faultSrc)
	t.Cleanup(func() {
		deleteBackups("fault-corrupt", "fault-nope", "fault-cut")
	})

	// Archives written elsewhere, each broken in its own way, in a bucket
	// the hub reads as location faults3.
	srv := s3server.Start(t)
	srv.CreateBucket(t, "faults")
	cm := func(ns, name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": serverMeta(name, ns, "e4b5c6d7-0000-4000-8000-000000000010", nil),
			"data":     map[string]any{"payload": randomText(2048)}}
	}
	// A tarball of objects laid out as Velero would, but no metadata/version.
	putVeleroBackup(t, srv, "faults", "", "junk", tarGz(t, veleroItem(t, "configmaps", "v1", "junk-ns", cm("junk-ns", "x"))))
	// Not even gzip.
	noise := make([]byte, 4096)
	rand.Read(noise)
	putVeleroBackup(t, srv, "faults", "", "noise", noise)
	// A whole Velero archive, cut in half.
	var items []veleroFile
	items = append(items, veleroItem(t, "namespaces", "v1", "", map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": serverMeta("trunc-ns", "", "f5c6d7e8-0000-4000-8000-000000000020", nil)})...)
	for i := range 20 {
		items = append(items, veleroItem(t, "configmaps", "v1", "trunc-ns", cm("trunc-ns", fmt.Sprintf("cm-%02d", i)))...)
	}
	whole := veleroArchive(t, items)
	putVeleroBackup(t, srv, "faults", "", "trunc", whole[:len(whole)/2])

	createS3Location(t, "faults3", srv, "faults", "")
	t.Cleanup(func() { flotillaErr("backup-location", "delete", "faults3", "--force") })
	waitLocation(t, "faults3", metav1.ConditionTrue)

	t.Run("corrupt archive", func(t *testing.T) {
		flotillaDone(t, "backup", "create", "fault-corrupt", "--cluster", "src", "--namespaces", "fault-src", "--location", fv1.DefaultLocation)
		path := filepath.Join(env.Hub.Dir, "backups", fv1.DefaultLocation, "backups", "fault-corrupt", "fault-corrupt.tar.gz")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(data) / 2; i < len(data)/2+16 && i < len(data); i++ {
			data[i] ^= 0x5a
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := failedRestore(t, "fault-corrupt-r", "--from-backup", "fault-corrupt", "--cluster", "dst", "--namespace-mapping", "fault-src:fault-corrupt-copy")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "the archive's checksum is sha256:") ||
			!strings.Contains(msg, "but the backup recorded "+backupOf(t, "fault-corrupt").Status.Checksum) || !strings.Contains(msg, "nothing was restored") {
			t.Errorf("restore of a corrupt archive says: %s", msg)
		}
		namespaceAbsent(t, "dst", "fault-corrupt-copy")
		namespaceAbsent(t, "dst", "fault-src")
	})

	t.Run("foreign archive", func(t *testing.T) {
		r := failedRestore(t, "fault-junk-r", "--from-location", "faults3", "--backup", "junk", "--cluster", "dst")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "not a Velero-format backup archive: it has no metadata/version file") {
			t.Errorf("restore of a tarball without metadata/version says: %s", msg)
		}
		namespaceAbsent(t, "dst", "junk-ns")

		r = failedRestore(t, "fault-noise-r", "--from-location", "faults3", "--backup", "noise", "--cluster", "dst")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "not a gzip archive") || !strings.Contains(msg, "nothing was restored") {
			t.Errorf("restore of random bytes says: %s", msg)
		}
	})

	t.Run("truncated archive", func(t *testing.T) {
		r := failedRestore(t, "fault-trunc-r", "--from-location", "faults3", "--backup", "trunc", "--cluster", "dst")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "archive is truncated or corrupt") || !strings.Contains(msg, "nothing was restored") {
			t.Errorf("restore of a truncated archive says: %s", msg)
		}
		if r.Status.ItemsDone != 0 {
			t.Errorf("restore of a truncated archive restored %d items", r.Status.ItemsDone)
		}
		namespaceAbsent(t, "dst", "trunc-ns")
	})

	// The hub tells an agent its jobs changed as it queues one; the agent
	// must find the job when it asks, however soon that is. A job it misses
	// waits forever: nothing tells the agent again.
	t.Run("every job reaches its agent", func(t *testing.T) {
		for i := range 16 {
			name := fmt.Sprintf("fault-reach-%02d", i)
			if i%2 == 0 {
				failedRestore(t, name, "--from-location", "faults3", "--backup", "noise", "--cluster", "dst")
				flotillaErr("restore", "delete", name)
				continue
			}
			flotillaDone(t, "backup", "create", name, "--cluster", "src", "--namespaces", "fault-src", "--resources", "configmaps", "--location", fv1.DefaultLocation)
			deleteBackups(name)
		}
	})

	t.Run("unreachable location", func(t *testing.T) {
		// A port nothing listens on.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		flotilla(t, "backup-location", "create", "fault-down", "--type", "s3", "--endpoint", "http://"+addr, "--bucket", "nowhere",
			"--region", "us-east-1", "--path-style", "--access-key-id", "AKIAFAULT", "--secret-access-key", "fault-secret")
		t.Cleanup(func() {
			// The backup's archive cannot be deleted from a store that is
			// down: drop the location first, then the backup.
			flotillaErr("backup-location", "delete", "fault-down", "--force")
			flotillaErr("backup", "delete", "fault-down-1")
		})
		cond := waitLocation(t, "fault-down", metav1.ConditionFalse)
		if cond.Reason != "Unreachable" || !strings.Contains(cond.Message, `s3 location "fault-down": endpoint http://`+addr+" unreachable") ||
			!strings.Contains(cond.Message, "connection refused") {
			t.Errorf("Available condition of an unreachable location: %+v", cond)
		}
		out := flotilla(t, "backup-location", "list")
		if i := strings.Index(out, "fault-down "); i < 0 || !strings.Contains(strings.SplitN(out[i:], "\n", 2)[0], `no: s3 location "fault-down"`) {
			t.Errorf("backup-location list does not say fault-down is unavailable:\n%s", out)
		}

		flotilla(t, "backup", "create", "fault-down-1", "--cluster", "src", "--namespaces", "fault-src", "--location", "fault-down")
		seen, b := followBackup(t, "fault-down-1", 2*time.Minute)
		if b.Status.Phase != fv1.PhaseFailed || seen[fv1.PhaseCompleted] || b.Status.Uploaded {
			t.Fatalf("backup to an unreachable location: phases %v, status %+v", seen, b.Status)
		}
		// Named as the location, not as its bucket.
		if msg := jobText(b.Status.JobProgress); !strings.Contains(msg, `s3 location "fault-down": put "backups/fault-down-1/fault-down-1.tar.gz.uploading-`) ||
			!strings.Contains(msg, "endpoint http://"+addr+" unreachable") {
			t.Errorf("backup to an unreachable location says: %s", msg)
		}
	})

	t.Run("interrupted backup", func(t *testing.T) {
		// Enough data (3,000 ConfigMaps of 6 KiB that do not compress) that
		// the backup runs for a few seconds.
		makeConfigMaps(t, "fault-bulk", 3000, 6<<10)
		t.Cleanup(func() {
			members["src"].Clientset.CoreV1().Namespaces().Delete(context.Background(), "fault-bulk", metav1.DeleteOptions{})
		})
		t.Cleanup(func() { ensureAgent(t, "src") })

		flotilla(t, "backup", "create", "fault-cut", "--cluster", "src", "--namespaces", "fault-bulk")
		var b *fv1.Backup
		deadline := time.Now().Add(time.Minute)
		for {
			b = backupOf(t, "fault-cut")
			if b.Status.Phase == fv1.PhaseInProgress || b.Status.Phase.Done() || b.Status.Uploaded || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if b.Status.Phase != fv1.PhaseInProgress || b.Status.Uploaded {
			t.Fatalf("want the backup in progress, and not stored, to cut it short; it is %s (uploaded %v)", b.Status.Phase, b.Status.Uploaded)
		}
		agents["src"].Kill()
		if b = backupOf(t, "fault-cut"); b.Status.Uploaded || b.Status.Phase != fv1.PhaseInProgress {
			t.Fatalf("the backup was stored before its agent was killed (phase %s): make it bigger", b.Status.Phase)
		}
		agents["src"] = agentProcess("src", members["src"], filepath.Join(tmp, "agent-src"))
		if err := agents["src"].Run(); err != nil {
			t.Fatalf("restarting src's agent: %v", err)
		}

		seen, b := followBackup(t, "fault-cut", time.Minute)
		if b.Status.Phase != fv1.PhaseFailed || seen[fv1.PhaseCompleted] {
			t.Fatalf("interrupted backup: phases %v, status %+v", seen, b.Status)
		}
		if msg := jobText(b.Status.JobProgress); !strings.Contains(msg, "the agent restarted while the backup ran, so it was cut short: create it again") {
			t.Errorf("interrupted backup says: %s", msg)
		}
		// Not even part of the archive stays: the hub drops an upload cut short.
		dir := filepath.Join(env.Hub.Dir, "backups", fv1.DefaultLocation, "backups", "fault-cut")
		if entries, err := os.ReadDir(dir); err != nil && !os.IsNotExist(err) || len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("the interrupted backup left %q in the hub location (%v)", names, err)
		}
		// It stays failed: nothing finishes it later.
		time.Sleep(3 * time.Second)
		if b := backupOf(t, "fault-cut"); b.Status.Phase != fv1.PhaseFailed {
			t.Errorf("the interrupted backup went on to %s", b.Status.Phase)
		}
		// The restarted agent runs the backup again, whole; how long it
		// takes is the window the kill above had.
		start := time.Now()
		flotillaDone(t, "backup", "create", "fault-after-cut", "--cluster", "src", "--namespaces", "fault-bulk")
		t.Logf("the whole backup took %s", time.Since(start).Round(time.Millisecond))
		if b := backupOf(t, "fault-after-cut"); b.Status.ItemsDone < 3000 {
			t.Errorf("the backup after the restart took %d items, want the 3,000 ConfigMaps", b.Status.ItemsDone)
		}
		deleteBackups("fault-after-cut")
	})

	t.Run("hub restarted mid-backup", func(t *testing.T) {
		flotilla(t, "backup", "create", "fault-hub", "--cluster", "src", "--namespaces", "fault-bulk")
		waitFor(t, time.Minute, "fault-hub in progress", func(context.Context) (bool, error) {
			b := backupOf(t, "fault-hub")
			return b.Status.Phase == fv1.PhaseInProgress || b.Status.Phase.Done(), nil
		})
		env.Hub.Kill()
		if err := env.Hub.Start(); err != nil {
			t.Fatal(err)
		}
		if err := env.Hub.Wait(); err != nil {
			t.Fatalf("restarting the hub: %v", err)
		}
		seen, b := followBackup(t, "fault-hub", 2*time.Minute)
		t.Logf("after the hub's restart the backup ended %s (phases seen %v): %s", b.Status.Phase, seen, jobText(b.Status.JobProgress))
		dir := filepath.Join(env.Hub.Dir, "backups", fv1.DefaultLocation, "backups", "fault-hub")
		switch b.Status.Phase {
		case fv1.PhaseCompleted:
			// The upload was whole before the kill: so must the archive be.
			file := filepath.Join(t.TempDir(), "a.tar.gz")
			flotilla(t, "backup", "download", "fault-hub", "-o", file)
			if b.Status.ItemsDone < 3000 {
				t.Errorf("completed after the restart with %d items, want the 3,000 ConfigMaps", b.Status.ItemsDone)
			}
		case fv1.PhaseFailed:
			if msg := jobText(b.Status.JobProgress); !strings.Contains(msg, "storing the archive in location default") {
				t.Errorf("the backup cut by the hub's restart says: %s", msg)
			}
			if _, err := os.Stat(filepath.Join(dir, "velero-backup.json")); !os.IsNotExist(err) {
				t.Errorf("a failed backup has metadata in the hub location: %v", err)
			}
		default:
			t.Errorf("after the hub's restart the backup ended %s", b.Status.Phase)
		}
		deleteBackups("fault-hub")
	})

	t.Run("unknown cluster", func(t *testing.T) {
		_, err := flotillaWait(t, time.Minute, "backup", "create", "fault-nope", "--cluster", "nope")
		if err == nil || !strings.Contains(err.Error(), "fault-nope failed: ClusterNotFound: cluster nope is not attached to this hub") {
			t.Errorf("backup of an unknown cluster: %v", err)
		}
		if b := backupOf(t, "fault-nope"); b.Status.Phase != fv1.PhaseFailed || !strings.Contains(jobText(b.Status.JobProgress), "not attached") {
			t.Errorf("backup of an unknown cluster: %+v", b.Status)
		}

		r := failedRestore(t, "fault-missing", "--from-backup", "no-such-backup", "--cluster", "dst")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "backup no-such-backup is not on the hub: `flotilla backup list` shows the backups") {
			t.Errorf("restore of a backup that does not exist says: %s", msg)
		}
		r = failedRestore(t, "fault-missing-loc", "--from-location", "faults3", "--backup", "no-such-backup", "--cluster", "dst")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "backup location faults3 holds no complete backup no-such-backup") ||
			!strings.Contains(msg, "flotilla restore create --from-location faults3") {
			t.Errorf("restore of a backup a location does not hold says: %s", msg)
		}
		r = failedRestore(t, "fault-into-nope", "--from-location", "faults3", "--backup", "junk", "--cluster", "nope")
		if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "cluster nope is not attached") {
			t.Errorf("restore into an unknown cluster says: %s", msg)
		}
	})
}

// failedRestore runs restore name with args and --wait, which must fail,
// and returns the Restore.
func failedRestore(t *testing.T, name string, args ...string) *fv1.Restore {
	t.Helper()
	_, err := flotillaWait(t, time.Minute, append([]string{"restore", "create", name}, args...)...)
	if err == nil || !strings.Contains(err.Error(), name+" failed: ") {
		t.Errorf("restore %s: want it to fail, got %v", name, err)
	}
	r := restoreOf(t, name)
	if r.Status.Phase != fv1.PhaseFailed || r.Status.Errors == 0 {
		t.Errorf("restore %s: phase %s with %d errors, want Failed", name, r.Status.Phase, r.Status.Errors)
	}
	return r
}

// jobText is every message of a job, one a line.
func jobText(p fv1.JobProgress) string {
	var lines []string
	for _, m := range p.Messages {
		lines = append(lines, m.Severity+": "+m.Message)
	}
	return strings.Join(lines, "\n")
}

// followBackup polls backup name until it is done and returns every phase
// it was seen in.
func followBackup(t *testing.T, name string, timeout time.Duration) (map[fv1.JobPhase]bool, *fv1.Backup) {
	t.Helper()
	seen := map[fv1.JobPhase]bool{}
	var b *fv1.Backup
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		b = backupOf(t, name)
		seen[b.Status.Phase] = true
		return b.Status.Phase.Done(), nil
	})
	if err != nil {
		t.Fatalf("backup %s not done after %s: status %+v\nits agent's log ends:\n%s", name, timeout, b.Status, logTail(filepath.Join(tmp, "agent-"+b.Spec.Cluster, "logs", "agent.log"), 3000))
	}
	return seen, b
}

// makeConfigMaps creates namespace ns in src with n ConfigMaps of size
// random (incompressible) bytes each, in parallel.
func makeConfigMaps(t *testing.T, ns string, n, size int) {
	t.Helper()
	ctx := context.Background()
	cfg := rest.CopyConfig(members["src"].Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bulk-%05d", i), Namespace: ns},
					Data: map[string]string{"blob": randomText(size)}}
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("creating ConfigMaps in %s: %v", ns, firstErr)
	}
}

// randomText is n characters of base64 of random bytes.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// ensureAgent restarts name's agent if a test left it stopped.
func ensureAgent(t *testing.T, name string) {
	select {
	case <-agents[name].Done():
	default:
		return
	}
	agents[name] = agentProcess(name, members[name], filepath.Join(tmp, "agent-"+name))
	if err := agents[name].Run(); err != nil {
		t.Errorf("restarting %s's agent: %v", name, err)
	}
}

// logTail is the last n bytes of a process's log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// flotillaWait runs a create with --wait, which must end within timeout; a
// job that never ends fails t with what its agent and the hub said.
func flotillaWait(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--wait")...)
	cmd.Env = append(os.Environ(), "FLOTILLA_HUB_KUBECONFIG="+env.Hub.Kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		kind, name := args[0], args[2]
		status, _ := hubKubectl("", "get", kind, name, "-o", "yaml")
		var logs strings.Builder
		for n := range agents {
			fmt.Fprintf(&logs, "--- agent %s:\n%s\n", n, logTail(filepath.Join(tmp, "agent-"+n, "logs", "agent.log"), 3000))
		}
		t.Fatalf("flotilla %s: not done after %s:\n%s\n%s\n%s--- hub:\n%s", strings.Join(args, " "), timeout, stderr.String(), status, logs.String(), logTail(filepath.Join(env.Hub.Dir, "logs", "hub.log"), 5000))
	}
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// flotillaDone is flotillaWait for a job that must succeed.
func flotillaDone(t *testing.T, args ...string) string {
	t.Helper()
	out, err := flotillaWait(t, 2*time.Minute, args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v", strings.Join(args, " "), err)
	}
	return out
}
