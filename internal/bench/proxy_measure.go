package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/procs"
)

const (
	podsNamespace  = "bench-proxy"
	watchNamespace = "bench-proxy-watch"
	// warmup requests go first on each path: connections, the tunnel, caches.
	warmup = 5
	// kubectlAccept is what `kubectl get` asks for: a server-side table.
	kubectlAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	// kubectlChunk is kubectl's default --chunk-size.
	kubectlChunk = 500
	// listPause spaces the lists. A list as kubectl sends it must be
	// consistent: the member's watch cache asks etcd whether it is current,
	// at most once per 100 ms, and a list sent sooner after another waits
	// out the rest of the period.
	listPause = 100 * time.Millisecond
	// getsPerRequest: a get costs about a millisecond, so its series is
	// longer, for a p99 that is not one outlier of a few hundred.
	getsPerRequest = 10
)

// createPods creates o.Pods pods bound round-robin to the simulated nodes
// (the scheduler has nothing to do) and waits until those mark them Running.
func (r *proxyRun) createPods(ctx context.Context) error {
	cs := r.clients[direct]
	for _, ns := range []string{podsNamespace, watchNamespace} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	nodes := max(1, (r.o.Pods+99)/100)
	next := make(chan int)
	var first atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pod := simPod(podsNamespace, "web", "web-"+strconv.Itoa(i))
				pod.Spec.NodeName = "node-" + strconv.Itoa(1+i%nodes)
				pod.Status = corev1.PodStatus{}
				if _, err := cs.CoreV1().Pods(podsNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := range r.o.Pods {
		next <- i
	}
	close(next)
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	running := fields.OneTermEqualSelector("status.phase", string(corev1.PodRunning)).String()
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(podsNamespace).List(ctx, metav1.ListOptions{FieldSelector: running})
		return err == nil && len(l.Items) == r.o.Pods, nil
	})
}

// measureList times kubectl's `get pods`: the table, in chunks.
func (r *proxyRun) measureList(ctx context.Context) error {
	var err error
	r.res.list, err = series(ctx, r.o.Requests, listPause, func(ctx context.Context, path int) error {
		rows, pages, err := kubectlGetPods(ctx, r.clients[path])
		if err == nil && rows != r.o.Pods {
			err = fmt.Errorf("listed %d of %d pods", rows, r.o.Pods)
		}
		r.res.pages = pages
		return err
	})
	return err
}

// kubectlGetPods lists the pods as kubectl does, following continue tokens,
// and returns how many rows and pages came.
func kubectlGetPods(ctx context.Context, cs *kubernetes.Clientset) (rows, pages int, err error) {
	cont := ""
	for {
		req := cs.CoreV1().RESTClient().Get().Namespace(podsNamespace).Resource("pods").
			Param("limit", strconv.Itoa(kubectlChunk)).SetHeader("Accept", kubectlAccept)
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.DoRaw(ctx)
		if err != nil {
			return rows, pages, err
		}
		// Only what paging needs: the rows' cells are the same bytes both ways.
		var table struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Rows []struct{} `json:"rows"`
		}
		if err := json.Unmarshal(body, &table); err != nil {
			return rows, pages, err
		}
		if table.Kind != "Table" {
			return rows, pages, fmt.Errorf("got a %s, not a Table", table.Kind)
		}
		rows, pages = rows+len(table.Rows), pages+1
		if cont = table.Metadata.Continue; cont == "" {
			return rows, pages, nil
		}
	}
}

func (r *proxyRun) measureGet(ctx context.Context) error {
	var err error
	r.res.get, err = series(ctx, getsPerRequest*r.o.Requests, 0, func(ctx context.Context, path int) error {
		_, err := r.clients[path].CoreV1().Pods(podsNamespace).Get(ctx, "web-0", metav1.GetOptions{})
		return err
	})
	return err
}

// series times n requests on each path, after warmup untimed ones, so that
// both see the same machine: in pairs, the pair's order drawn at random, and
// after a pause drawn between pause and twice that, so that neither path
// keeps in step with something periodic in the servers. Each duration list
// is sorted.
func series(ctx context.Context, n int, pause time.Duration, do func(ctx context.Context, path int) error) ([2][]time.Duration, error) {
	var lat [2][]time.Duration
	for i := range warmup + n {
		first := rand.IntN(2)
		for _, path := range [2]int{first, 1 - first} {
			if pause > 0 {
				select {
				case <-ctx.Done():
					return lat, ctx.Err()
				case <-time.After(pause + rand.N(pause)):
				}
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			start := time.Now()
			err := do(rctx, path)
			d := time.Since(start)
			cancel()
			if err != nil {
				return lat, fmt.Errorf("%s: %w", pathName[path], err)
			}
			if i >= warmup {
				lat[path] = append(lat[path], d)
			}
		}
	}
	for _, l := range lat {
		sortDurations(l)
	}
	return lat, nil
}

var pathName = [2]string{direct: "direct", viaHub: "through the hub"}

// measureWatch opens a watch on each path from the same resource version,
// creates ConfigMaps one at a time and times, for each, from the create's
// response to each watch's ADDED event.
func (r *proxyRun) measureWatch(ctx context.Context) error {
	cms := r.clients[direct].CoreV1().ConfigMaps(watchNamespace)
	l, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	type added struct {
		name string
		at   time.Time
	}
	var events [2]chan added
	for path, cs := range r.clients {
		w, err := cs.CoreV1().ConfigMaps(watchNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
		if err != nil {
			return fmt.Errorf("%s: %w", pathName[path], err)
		}
		defer w.Stop()
		ch := make(chan added, 16)
		events[path] = ch
		go func() {
			for ev := range w.ResultChan() {
				at := time.Now()
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added {
					ch <- added{cm.Name, at}
				}
			}
			close(ch)
		}()
	}
	for i := range warmup + r.o.Requests {
		name := "cm-" + strconv.Itoa(i)
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		created := time.Now()
		for path, ch := range events {
			select {
			case ev, ok := <-ch:
				if !ok {
					return fmt.Errorf("the watch %s ended", pathName[path])
				}
				if ev.name != name {
					return fmt.Errorf("the watch %s saw %s, not %s", pathName[path], ev.name, name)
				}
				if i >= warmup {
					r.res.watch[path] = append(r.res.watch[path], ev.at.Sub(created))
				}
			case <-time.After(30 * time.Second):
				return fmt.Errorf("the watch %s saw no ADDED event for %s in 30s", pathName[path], name)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	for _, l := range r.res.watch {
		sortDurations(l)
	}
	return nil
}

// measureThroughput has o.Clients clients get one pod as fast as they can
// for o.Duration, on one path and then the other.
func (r *proxyRun) measureThroughput(ctx context.Context) error {
	for path, cs := range r.clients {
		var ok, failed atomic.Int64
		wctx, cancel := context.WithTimeout(ctx, r.o.Duration)
		start := time.Now()
		var wg sync.WaitGroup
		for range r.o.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for wctx.Err() == nil {
					if _, err := cs.CoreV1().Pods(podsNamespace).Get(wctx, "web-0", metav1.GetOptions{}); err == nil {
						ok.Add(1)
					} else if wctx.Err() == nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		r.res.rps[path] = float64(ok.Load()) / time.Since(start).Seconds()
		r.res.failed[path] = int(failed.Load())
		if err := ctx.Err(); err != nil {
			return err
		}
		r.logf("%s: %.0f requests/s, %d failed", pathName[path], r.res.rps[path], failed.Load())
	}
	return nil
}

// tunnelMemory reads the hub's memory with f's clusters idle and no tunnel
// of theirs open, then opens every one's tunnel with a GET /version through
// the hub and reads it again.
func (r *proxyRun) tunnelMemory(ctx context.Context, f *fleet) error {
	hubPID := r.lf.procs[0].PID()
	var err error
	// Registration's aftermath (queued reconciles, the first heartbeats' work)
	// settles for a heartbeat interval or so first.
	time.Sleep(10 * time.Second)
	if r.res.pssBefore, r.res.goBefore, err = r.hubMemory(ctx, hubPID); err != nil {
		return err
	}
	r.logf("hub PSS %.1f MiB with %d idle clusters; opening their tunnels", mib(r.res.pssBefore[1]), len(f.sims))
	var mu sync.Mutex
	names := make(chan string)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				start := time.Now()
				var code int
				err := r.hub.Discovery().RESTClient().Get().AbsPath(fv1.ProxyPath(name), "version").Do(rctx).StatusCode(&code).Error()
				d := time.Since(start)
				cancel()
				mu.Lock()
				if err == nil && code == http.StatusOK {
					r.res.opened = append(r.res.opened, d)
				} else if r.res.openErr == "" {
					r.res.openErr = fmt.Sprintf("%s: %d %v", name, code, err)
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for _, s := range f.sims {
		names <- s.name
	}
	close(names)
	wg.Wait()
	r.res.tunnels = len(f.sims)
	sortDurations(r.res.opened)
	r.logf("%d/%d tunnels opened in %.1fs", len(r.res.opened), len(f.sims), time.Since(start).Seconds())
	// Agents close their tunnels after tunnel.IdleTimeout (minutes): these
	// readings, seconds later, see every one open.
	r.res.pssAfter, r.res.goAfter, err = r.hubMemory(ctx, hubPID)
	return err
}

// The hub's Go runtime figures: its apiserver runs in the hub's process, so
// the apiserver's metrics of the Go runtime are the hub's.
const (
	gcCycles   = "go_gc_cycles_total_gc_cycles_total"
	liveHeap   = "go_gc_heap_live_bytes" // marked by the last collection
	stacks     = "go_memstats_stack_inuse_bytes"
	goroutines = "go_goroutines"
)

// hubMemory waits for two of the hub's garbage collections, so that the
// garbage a burst of work left is collected and the live heap counted
// afresh, then reads the PSS of the hub's process tree twice, 5 s apart,
// and its Go runtime's figures.
func (r *proxyRun) hubMemory(ctx context.Context, pid int) ([2]int64, map[string]float64, error) {
	var pss [2]int64
	m, err := metricSums(ctx, r.hub, gcCycles)
	if err != nil {
		return pss, nil, err
	}
	since := m[gcCycles]
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, false, func(ctx context.Context) (bool, error) {
		m, err := metricSums(ctx, r.hub, gcCycles)
		return err == nil && m[gcCycles] >= since+2, nil
	}); err != nil {
		return pss, nil, fmt.Errorf("waiting for the hub to collect garbage twice: %w", err)
	}
	if pss, err = settledPSS(ctx, pid); err != nil {
		return pss, nil, err
	}
	m, err = metricSums(ctx, r.hub, liveHeap, stacks, goroutines)
	return pss, m, err
}

// settledPSS reads the PSS of pid's process tree twice, 5 s apart, the first
// 5 s from now: the later is the figure, their difference shows the noise.
func settledPSS(ctx context.Context, pid int) ([2]int64, error) {
	var pss [2]int64
	for i := range pss {
		select {
		case <-ctx.Done():
			return pss, ctx.Err()
		case <-time.After(5 * time.Second):
		}
		m, err := procs.TreeMemory(pid)
		if err != nil {
			return pss, err
		}
		pss[i] = m.PSS
	}
	return pss, nil
}
