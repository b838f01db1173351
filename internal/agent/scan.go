package agent

import (
	"context"
	"sort"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// Scanning bounds: what one scan asks of the member's apiserver. Objects
// to check are read one by one while few, in pages once many (a changed
// policy has every object checked again), and checked by a few workers
// under the scan client's rate limit.
const (
	scanQPS       = 200 // requests per second, reads and dry runs together
	scanWorkers   = 4
	scanPage      = 500
	listThreshold = 50 // objects of one kind to check above which a scan lists them
)

// kindScan keeps the metadata of one governed kind's objects, so a scan
// knows which objects are new or changed since they were last checked.
type kindScan struct {
	inf  toolscache.SharedIndexInformer
	stop context.CancelFunc
}

// toCheck is one object a scan checks, and the resource it was read from.
type toCheck struct {
	gvr schema.GroupVersionResource
	u   *unstructured.Unstructured
}

// checked is what a scan found of one object, and of which version of it.
type checked struct {
	version  string
	findings []fv1.Insight
}

// versionOf names the version of an object a check holds for: its
// generation, which moves only with its spec, where it has one.
func versionOf(m *metav1.PartialObjectMetadata) string {
	if m.Generation > 0 {
		return "g" + strconv.FormatInt(m.Generation, 10)
	}
	return "r" + m.ResourceVersion
}

// watchKinds keeps a metadata informer for each resource in governed, and
// for pods always (pod security levels govern pods without a rule of their
// own); informers of resources no longer governed stop.
func (r *reporter) watchKinds(ctx context.Context, meta metadata.Interface, governed []schema.GroupVersionResource) {
	want := map[schema.GroupVersionResource]bool{podsResource: true}
	for _, gvr := range governed {
		want[gvr] = true
	}
	for gvr, ks := range r.kinds {
		if !want[gvr] {
			ks.stop()
			delete(r.kinds, gvr)
		}
	}
	for gvr := range want {
		if r.kinds[gvr] != nil {
			continue
		}
		kctx, stop := context.WithCancel(ctx)
		inf := informerOf(meta, gvr, meta.Resource(gvr), &metav1.PartialObjectMetadata{}, "")
		inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { r.t.poke() },
			UpdateFunc: func(o, n any) {
				om, ok1 := o.(*metav1.PartialObjectMetadata)
				nm, ok2 := n.(*metav1.PartialObjectMetadata)
				if !ok1 || !ok2 || versionOf(om) != versionOf(nm) {
					r.t.poke()
				}
			},
			DeleteFunc: func(any) { r.t.poke() },
		})
		go inf.RunWithContext(kctx)
		go func() {
			if toolscache.WaitForCacheSync(kctx.Done(), inf.HasSynced) {
				r.t.poke()
			}
		}()
		r.kinds[gvr] = &kindScan{inf: inf, stop: stop}
	}
}

// skipObject leaves out what the cluster's own machinery runs and what is
// going away.
func skipObject(m *metav1.PartialObjectMetadata) bool {
	_, mirror := m.Annotations[corev1.MirrorPodAnnotationKey]
	return mirror || m.DeletionTimestamp != nil || policy.Exempt(m.Namespace)
}

// checkAll asks the cluster about each object in todo and returns the
// findings by object.
func (r *reporter) checkAll(ctx context.Context, todo map[schema.GroupVersionResource][]*metav1.PartialObjectMetadata, security map[string]policy.NamespaceSecurity) (map[types.UID][]fv1.Insight, error) {
	objs := make(chan toCheck)
	var (
		mu    sync.Mutex
		out   = map[types.UID][]fv1.Insight{}
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for range scanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range objs {
				found, err := r.check(ctx, o.gvr, o.u, security)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				out[o.u.GetUID()] = found
				mu.Unlock()
			}
		}()
	}
	for gvr, ms := range todo {
		if err := r.read(ctx, gvr, ms, objs); err != nil {
			fail(err)
			break
		}
	}
	close(objs)
	wg.Wait()
	return out, first
}

// read sends the objects ms names to objs: one by one while few, by the
// page once many.
func (r *reporter) read(ctx context.Context, gvr schema.GroupVersionResource, ms []*metav1.PartialObjectMetadata, objs chan<- toCheck) error {
	ri := r.scan.Resource(gvr)
	if len(ms) <= listThreshold {
		for _, m := range ms {
			u, err := ri.Namespace(m.Namespace).Get(ctx, m.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			objs <- toCheck{gvr, u}
		}
		return nil
	}
	want := make(map[types.UID]bool, len(ms))
	for _, m := range ms {
		want[m.UID] = true
	}
	opts := metav1.ListOptions{Limit: scanPage}
	for {
		page, err := ri.List(ctx, opts)
		if err != nil {
			return err
		}
		for i := range page.Items {
			if want[page.Items[i].GetUID()] {
				objs <- toCheck{gvr, &page.Items[i]}
			}
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

// checkCopy is what a dry-run create of u's like sends: u's content under
// a generated name, without what the server set on u.
func checkCopy(u *unstructured.Unstructured) *unstructured.Unstructured {
	cp := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range u.Object {
		if k != "metadata" && k != "status" {
			cp.Object[k] = v
		}
	}
	cp = cp.DeepCopy()
	cp.SetGenerateName("flotilla-check-")
	cp.SetNamespace(u.GetNamespace())
	cp.SetLabels(u.GetLabels())
	cp.SetAnnotations(u.GetAnnotations())
	switch u.GroupVersionKind().GroupKind() {
	case schema.GroupKind{Kind: "Pod"}:
		unstructured.RemoveNestedField(cp.Object, "spec", "ephemeralContainers") // not allowed on create
	case schema.GroupKind{Kind: "Service"}:
		// Its addresses are taken; a copy asking for them would be refused
		// before admission policies run.
		unstructured.RemoveNestedField(cp.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(cp.Object, "spec", "clusterIPs")
	}
	return cp
}

// sortFindings orders findings by namespace, then object, so reports are stable.
func sortFindings(in []fv1.Insight) {
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].Namespace != in[j].Namespace {
			return in[i].Namespace < in[j].Namespace
		}
		return in[i].Object < in[j].Object
	})
}
