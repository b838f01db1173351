package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// BackupOptions say what bench backup measures.
type BackupOptions struct {
	Objects int // ConfigMaps and Secrets, half each
	Size    int // bytes of data in each
	// AgentBinary runs the agent: a flotilla-agent binary; "" is this
	// binary's agent command.
	AgentBinary string
}

// Backup measures a backup and a restore of one namespace of o.Objects
// ConfigMaps and Secrets of o.Size bytes: it starts a hub and a local
// cluster, attaches the cluster with an agent process, fills the namespace
// (timing the member apiserver's write rate: the ceiling a restore meets),
// backs it up to the hub location, restores it into another namespace of
// the same cluster, and samples the agent's RSS throughout. It prints
// numbers and asserts nothing.
func Backup(ctx context.Context, out, progress io.Writer, o BackupOptions) error {
	tmp, err := os.MkdirTemp("", "flotilla-bench-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	quietLogs()
	logf := progressLog(progress)
	lf, err := startLocal(tmp, 1, 1)
	if err != nil {
		return err
	}
	defer lf.stop()
	memberKubeconfig := filepath.Join(lf.clusterDirs[0], "kubeconfig")
	agent, err := startAgent(ctx, lf.cl, lf.cfg, tmp, "c0", memberKubeconfig, o.AgentBinary)
	if err != nil {
		return err
	}
	defer agent.Stop(5 * time.Second)
	if err := untilCluster(ctx, lf.cl, 2*time.Minute, func(c *fv1.Cluster) bool { return c.Status.Health == fv1.HealthHealthy }); err != nil {
		return fmt.Errorf("cluster not Healthy: %w", err)
	}
	cfg, err := kubeconfig.Load(memberKubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var res backupResult
	res.objects, res.size = o.Objects, o.Size
	logf("filling namespace bench with %d objects of %d bytes", o.Objects, o.Size)
	if res.fill, err = fill(ctx, cs, "bench", o.Objects, o.Size); err != nil {
		return err
	}
	if rss, anon, err := rssOf(agent.PID()); err == nil {
		res.idleRSS = [2]int64{rss, anon}
	}
	rss := sampleRSS(agent.PID())
	logf("backing up")
	res.backup, err = timeJob(ctx, lf.cl, &fv1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: fv1.BackupSpec{Cluster: "c0",
		BackupTemplate: fv1.BackupTemplate{ResourceFilter: fv1.ResourceFilter{IncludedNamespaces: []string{"bench"}}}}})
	res.backupRSS = rss.stop()
	if err != nil {
		return err
	}
	var b fv1.Backup
	if err := lf.cl.Get(ctx, client.ObjectKey{Name: "bench"}, &b); err != nil {
		return err
	}
	res.items, res.archive = b.Status.ItemsDone, b.Status.Size
	rss = sampleRSS(agent.PID())
	logf("restoring into namespace bench-restored")
	res.restore, err = timeJob(ctx, lf.cl, &fv1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: fv1.RestoreSpec{BackupName: "bench", Cluster: "c0",
		NamespaceMapping: map[string]fv1.NamespaceName{"bench": "bench-restored"}}})
	res.restoreRSS = rss.stop()
	if err != nil {
		return err
	}
	var r fv1.Restore
	if err := lf.cl.Get(ctx, client.ObjectKey{Name: "bench"}, &r); err != nil {
		return err
	}
	res.restored = r.Status.ItemsDone
	printBackup(out, &res)
	return nil
}

// fill creates n ConfigMaps and Secrets (half each) of size bytes in ns,
// 32 at a time, and returns how long it took.
func fill(ctx context.Context, cs *kubernetes.Clientset, ns string, n, size int) (time.Duration, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				// Random text, as base64 would be: the archive's size
				// is not flattered by data that compresses to nothing.
				payload := []byte(base64.StdEncoding.EncodeToString(randBytes(size)))[:size]
				meta := metav1.ObjectMeta{Name: fmt.Sprintf("obj-%06d", i), Namespace: ns}
				var err error
				if i%2 == 0 {
					_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"data": string(payload)}}, metav1.CreateOptions{})
				} else {
					_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"data": payload}}, metav1.CreateOptions{})
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// timeJob creates a Backup or a Restore and waits for it to finish.
func timeJob(ctx context.Context, cl client.Client, obj client.Object) (time.Duration, error) {
	start := time.Now()
	if err := cl.Create(ctx, obj); err != nil {
		return 0, err
	}
	var phase fv1.JobPhase
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, nil
		}
		switch o := obj.(type) {
		case *fv1.Backup:
			phase = o.Status.Phase
		case *fv1.Restore:
			phase = o.Status.Phase
		}
		return phase.Done(), nil
	})
	took := time.Since(start)
	if err == nil && phase != fv1.PhaseCompleted {
		err = fmt.Errorf("%s %s ended %s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), phase)
	}
	return took, err
}

// rssSampler records the peak RSS of a process, and of its anonymous
// part (what the process allocated, not the binary's pages it maps),
// sampled every 50 ms.
type rssSampler struct {
	peak, anon atomic.Int64
	done       chan struct{}
	wg         sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, anon, err := rssOf(pid); err == nil {
				s.peak.Store(max(s.peak.Load(), rss))
				s.anon.Store(max(s.anon.Load(), anon))
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peaks.
func (s *rssSampler) stop() [2]int64 {
	close(s.done)
	s.wg.Wait()
	return [2]int64{s.peak.Load(), s.anon.Load()}
}

// rssOf reads VmRSS and RssAnon of pid, in bytes.
func rssOf(pid int) (rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var kb int64
		fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "RssAnon":
			anon = kb << 10
		}
	}
	return rss, anon, nil
}
