package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// Insights starts a hub and one local cluster holding n ConfigMaps, half of
// which break a custom policy, attaches the cluster and measures, from the
// policy's creation, how long its agent takes to report every violation,
// and what that scan asked of the member's apiserver (its own request
// counter, so every client's requests are counted).
func Insights(ctx context.Context, out io.Writer, n int) error {
	tmp, err := os.MkdirTemp("", "flotilla-bench-insights-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lf, err := startLocal(tmp, 1, 1)
	if err != nil {
		return err
	}
	defer lf.stop()
	mcfg, err := kubeconfig.Load(filepath.Join(lf.clusterDirs[0], "kubeconfig"))
	if err != nil {
		return err
	}
	mcfg.QPS = -1
	member, err := kubernetes.NewForConfig(mcfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := fillConfigMaps(ctx, member, n); err != nil {
		return err
	}
	fmt.Fprintf(out, "created %d ConfigMaps in %s\n", n, time.Since(start).Round(time.Millisecond))

	agent, err := startAgent(ctx, lf.cl, lf.cfg, tmp, "c0", filepath.Join(lf.clusterDirs[0], "kubeconfig"), "")
	if err != nil {
		return err
	}
	defer agent.Stop(5 * time.Second)
	if err := untilCluster(ctx, lf.cl, 2*time.Minute, func(c *fv1.Cluster) bool { return c.Status.Health == fv1.HealthHealthy }); err != nil {
		return fmt.Errorf("cluster not Healthy: %w", err)
	}
	// Let the agent's start-up requests pass before counting.
	time.Sleep(5 * time.Second)

	before, err := apiserverRequests(ctx, member)
	if err != nil {
		return err
	}
	p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "bench-insights"}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyCustom, Scope: fv1.PolicyScope{Cluster: "c0"},
		Custom: &fv1.CustomSpec{MatchKinds: []string{"ConfigMap"}, Expression: "!has(object.data) || !('bad' in object.data)", Message: "no bad data"},
	}}
	start = time.Now()
	if err := lf.cl.Create(ctx, p); err != nil {
		return err
	}
	want := int32(n / 2)
	if err := untilCluster(ctx, lf.cl, 30*time.Minute, func(c *fv1.Cluster) bool {
		return c.Status.Policies != nil && c.Status.Policies.Violations >= want
	}); err != nil {
		return fmt.Errorf("violations not all reported: %w", err)
	}
	took := time.Since(start)
	after, err := apiserverRequests(ctx, member)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "policy create → %d violations among %d objects reported: %s\n", want, n, took.Round(time.Millisecond))
	fmt.Fprintf(out, "member apiserver requests meanwhile: %.0f (%.0f/s on average; includes the 3 s the agent waits for the cluster to load the policy)\n",
		after-before, (after-before)/took.Seconds())
	return nil
}

// fillConfigMaps creates n ConfigMaps in namespace bench, every other one
// holding the key the bench's policy forbids.
func fillConfigMaps(ctx context.Context, cs *kubernetes.Clientset, n int) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data := map[string]string{"ok": "1"}
				if i%2 == 0 {
					data["bad"] = "1"
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + strconv.Itoa(i)}, Data: data}
				if _, err := cs.CoreV1().ConfigMaps("bench").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// untilCluster polls the bench's only Cluster until cond holds.
func untilCluster(ctx context.Context, cl client.Client, timeout time.Duration, cond func(*fv1.Cluster) bool) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var c fv1.Cluster
		if err := cl.Get(ctx, client.ObjectKey{Name: "c0"}, &c); err != nil {
			return false, nil
		}
		return cond(&c), nil
	})
}

// apiserverRequests is the member apiserver's count of requests served.
func apiserverRequests(ctx context.Context, cs *kubernetes.Clientset) (float64, error) {
	sums, err := metricSums(ctx, cs, "apiserver_request_total")
	return sums["apiserver_request_total"], err
}

// metricSums reads an apiserver's metrics and returns, for each of names,
// the sum of its series' values (counters and gauges).
func metricSums(ctx context.Context, cs *kubernetes.Clientset, names ...string) (map[string]float64, error) {
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the apiserver's metrics: %w", err)
	}
	return sumMetrics(bytes.NewReader(raw), names...)
}

// sumMetrics parses metrics in Prometheus' text format and returns, for
// each of names, the sum of its series' values (counters and gauges).
func sumMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	sums := map[string]float64{}
	for _, name := range names {
		if f, ok := families[name]; ok {
			for _, m := range f.GetMetric() {
				sums[name] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sums, nil
}
