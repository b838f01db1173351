package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/archive"
	"flotilla.dev/flotilla/internal/backup/jobs"
)

var (
	crds       = schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}
	namespaces = schema.GroupResource{Resource: "namespaces"}
)

// crdWait bounds the wait for restored CRDs to be served.
const crdWait = 60 * time.Second

// restore reads job's archive to disk, checks it, and creates its objects
// in Velero's order. Nothing is written to the cluster before the archive
// is known whole.
func (r *Runner) restore(ctx context.Context, job jobs.Job) {
	spec := job.Restore
	if spec == nil {
		r.Failed(ctx, job, "the hub sent a restore job without its spec")
		return
	}
	f, err := newFilter(spec.ResourceFilter)
	if err != nil {
		r.Failed(ctx, job, err.Error())
		return
	}
	tmp, err := os.MkdirTemp(r.TempDir, "flotilla-restore-")
	if err != nil {
		r.Failed(ctx, job, "making a temporary dir for the archive: "+err.Error())
		return
	}
	defer os.RemoveAll(tmp)
	contents, err := r.fetch(ctx, job, tmp)
	if err != nil {
		r.Failed(ctx, job, err.Error()+"; nothing was restored")
		return
	}
	res, _, err := discover(r.Discovery)
	if err != nil {
		r.Failed(ctx, job, "discovering what the cluster serves: "+err.Error()+"; nothing was restored")
		return
	}
	pr := r.progressOf(ctx, job)
	rs := &restoring{r: r, spec: spec, f: f, pr: pr, res: res, c: contents, nss: map[string]bool{}, mapping: map[string]string{}}
	for from, to := range spec.NamespaceMapping {
		rs.mapping[from] = string(to)
	}
	rs.all(ctx)
	r.final(ctx, job, jobs.Report{Progress: pr.end(false)})
}

// fetch downloads job's archive into dir, verifies its checksum when the
// backup recorded one, and extracts it.
func (r *Runner) fetch(ctx context.Context, job jobs.Job, dir string) (*archive.Contents, error) {
	st, err := Open(job.Location, r.HubRT, r.HubBase)
	if err != nil {
		return nil, err
	}
	rc, err := st.Get(ctx, job.Archive)
	if err != nil {
		return nil, fmt.Errorf("reading the archive %s from location %s: %v", job.Archive, job.Location.Name, err)
	}
	defer rc.Close()
	path := filepath.Join(dir, "archive.tar.gz")
	file, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(file, h), rc); err != nil {
		return nil, fmt.Errorf("downloading the archive from location %s: %v", job.Location.Name, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); job.Checksum != "" && got != job.Checksum {
		return nil, fmt.Errorf("the archive's checksum is %s but the backup recorded %s: the archive is corrupt or was replaced", got, job.Checksum)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	c, err := archive.Extract(file, filepath.Join(dir, "x"), archive.Limits{})
	if err != nil {
		return nil, fmt.Errorf("the archive is refused: %v", err)
	}
	return c, nil
}

// restoring is one restore under way.
type restoring struct {
	r       *Runner
	spec    *fv1.RestoreSpec
	f       *filter
	pr      *progress
	res     map[schema.GroupResource]served
	c       *archive.Contents
	mu      sync.Mutex
	nss     map[string]bool // namespaces known to exist
	mapping map[string]string
}

// all restores every resource of the archive, CRDs first; once they are,
// it waits for the cluster to serve the resources they define.
func (rs *restoring) all(ctx context.Context) {
	grs := make([]schema.GroupResource, 0, len(rs.c.Resources))
	for gr := range rs.c.Resources {
		grs = append(grs, gr)
	}
	for _, gr := range archive.Order(grs) {
		rs.resource(ctx, gr)
		if gr == crds {
			rs.awaitServed(ctx, grs)
		}
	}
}

// awaitServed rediscovers until the cluster serves every resource of the
// archive (CRDs just restored take a moment), or crdWait passes.
func (rs *restoring) awaitServed(ctx context.Context, grs []schema.GroupResource) {
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, crdWait, true, func(context.Context) (bool, error) {
		res, _, err := discover(rs.r.Discovery)
		if err != nil {
			return false, nil
		}
		rs.res = res
		for _, gr := range grs {
			if _, ok := res[gr]; !ok && !archive.NeverBackedUp(gr) && rs.wanted(gr) {
				return false, nil
			}
		}
		return true, nil
	})
}

// wanted says whether the restore takes any objects of gr, as far as the
// resource filter can tell without discovery.
func (rs *restoring) wanted(gr schema.GroupResource) bool {
	return !names(rs.f.f.ExcludedResources, gr) && (all(rs.f.f.IncludedResources) || names(rs.f.f.IncludedResources, gr))
}

// resource restores the objects of one resource.
func (rs *restoring) resource(ctx context.Context, gr schema.GroupResource) {
	items := rs.c.Resources[gr].Items
	if archive.NeverBackedUp(gr) || len(items) == 0 || !rs.wanted(gr) {
		return
	}
	s, ok := rs.res[gr]
	if !ok {
		rs.pr.add(int64(len(items)), 0, 0)
		rs.pr.fail(gr, "", "", fmt.Sprintf("the cluster does not serve %s: its %d objects are not restored", gr, len(items)))
		return
	}
	if !rs.f.resource(gr, s.namespaced) {
		return
	}
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	for range Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				rs.one(ctx, gr, s, obj)
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	for _, ref := range items {
		obj, err := rs.c.Read(ref)
		if err != nil {
			rs.pr.add(1, 0, 0)
			rs.pr.fail(gr, ref.Namespace, ref.Name, err.Error())
			continue
		}
		if !rs.f.object(gr, ref.Namespace, ref.Name, obj.GetLabels()) {
			continue
		}
		rs.pr.add(1, 0, 0)
		if why := archive.Skip(gr, obj); why != "" {
			rs.pr.add(0, 0, 1)
			continue
		}
		archive.MapNamespace(obj, rs.mapping)
		archive.Sanitize(gr, obj, s.hasStatus)
		select {
		case work <- obj:
		case <-ctx.Done():
			return
		}
	}
}

// Workers is how many objects of one resource a restore writes at once:
// resources go one after another, in order, so that what an object needs
// exists before it.
const Workers = 32

// one creates obj, or with the update policy patches the object there.
func (rs *restoring) one(ctx context.Context, gr schema.GroupResource, s served, obj *unstructured.Unstructured) {
	ns, name := obj.GetNamespace(), obj.GetName()
	if !s.namespaced {
		obj.SetNamespace("")
		ns = ""
	}
	if ns != "" && !rs.ensureNamespace(ctx, ns) {
		rs.pr.fail(gr, ns, name, "namespace "+ns+" could not be created")
		return
	}
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil || gv.Group != gr.Group {
		gv = s.gvr.GroupVersion()
		obj.SetAPIVersion(gv.String())
	}
	ri := rs.r.Dynamic.Resource(gv.WithResource(gr.Resource)).Namespace(ns)
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{})
	switch {
	case err == nil:
		if gr == namespaces {
			rs.known(name)
		}
		rs.pr.add(0, 1, 0)
	case apierrors.IsAlreadyExists(err) && rs.spec.ExistingResourcePolicy == fv1.ExistingUpdate:
		body, jerr := json.Marshal(obj.Object)
		if jerr == nil {
			_, err = ri.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
		} else {
			err = jerr
		}
		if err != nil {
			rs.pr.fail(gr, ns, name, "updating the existing object: "+err.Error())
			return
		}
		rs.pr.add(0, 1, 0)
	case apierrors.IsAlreadyExists(err):
		rs.pr.add(0, 0, 1)
	default:
		rs.pr.fail(gr, ns, name, err.Error())
	}
}

// ensureNamespace creates ns if the cluster lacks it (a backup filtered by
// labels may hold objects of a namespace it does not hold).
func (rs *restoring) ensureNamespace(ctx context.Context, ns string) bool {
	rs.mu.Lock()
	ok := rs.nss[ns]
	rs.mu.Unlock()
	if ok {
		return true
	}
	ri := rs.r.Dynamic.Resource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	if _, err := ri.Get(ctx, ns, metav1.GetOptions{}); err != nil {
		obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
		if _, err := ri.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return false
		}
	}
	rs.known(ns)
	return true
}

func (rs *restoring) known(ns string) {
	rs.mu.Lock()
	rs.nss[ns] = true
	rs.mu.Unlock()
}
