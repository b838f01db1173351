package executor

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"flotilla.dev/flotilla/internal/backup/archive"
	"flotilla.dev/flotilla/internal/backup/jobs"
)

// pageSize is how many objects one list call reads.
const pageSize = 500

var emptyGR schema.GroupResource

// backup lists what job takes into an archive streamed to its location.
func (r *Runner) backup(ctx context.Context, job jobs.Job) {
	if job.Backup == nil {
		r.Failed(ctx, job, "the hub sent a backup job without its spec")
		return
	}
	f, err := newFilter(job.Backup.ResourceFilter)
	if err != nil {
		r.Failed(ctx, job, err.Error())
		return
	}
	st, err := Open(job.Location, r.HubRT, r.HubBase)
	if err != nil {
		r.Failed(ctx, job, err.Error())
		return
	}
	res, failedGroups, err := discover(r.Discovery)
	if err != nil {
		r.Failed(ctx, job, "discovering what the cluster serves: "+err.Error())
		return
	}
	pr := r.progressOf(ctx, job)
	for gv, e := range failedGroups {
		pr.fail(schema.GroupResource{Group: gv.Group}, "", "", fmt.Sprintf("API %s could not be discovered, its objects are not backed up: %v", gv, e))
	}

	pipeR, pipeW := io.Pipe()
	out := &sink{w: pipeW, h: sha256.New()}
	stored := make(chan error, 1)
	go func() {
		err := st.Put(ctx, job.Archive, pipeR, -1)
		pipeR.CloseWithError(fmt.Errorf("the upload ended: %v", err))
		stored <- err
	}()
	aw, err := archive.NewWriter(out)
	if err == nil {
		err = r.writeAll(ctx, aw, res, f, pr, out)
	}
	if err == nil {
		err = aw.Close()
	}
	pipeW.CloseWithError(err) // nil: the upload sees the end
	putErr := <-stored
	if putErr != nil && (err == nil || out.err != nil) {
		// The upload failed (the archive could not be written because of
		// it): its error says why, the pipe's would not.
		err = fmt.Errorf("storing the archive in location %s: %v", job.Location.Name, putErr)
	}
	if err == nil {
		err = putResourceList(ctx, st, job.ResourceList, aw.ResourceList())
	}
	if err != nil {
		pr.fail(emptyGR, "", "", err.Error())
		r.final(ctx, job, jobs.Report{Progress: pr.end(true)})
		return
	}
	p := pr.end(false)
	p.Phase = "" // the hub ends a backup once it has written the metadata
	r.final(ctx, job, jobs.Report{Progress: p, Uploaded: true, Size: out.n, Checksum: "sha256:" + hex.EncodeToString(out.h.Sum(nil))})
}

// writeAll writes every object f takes, resource by resource. It stops
// only when the archive cannot be written; an object or a resource that
// cannot be read is an error of its own in the progress.
func (r *Runner) writeAll(ctx context.Context, aw *archive.Writer, res map[schema.GroupResource]served, f *filter, pr *progress, out *sink) error {
	grs := make([]schema.GroupResource, 0, len(res))
	for gr := range res {
		grs = append(grs, gr)
	}
	slices.SortFunc(grs, func(a, b schema.GroupResource) int { return compareGR(a, b) })
	for _, gr := range grs {
		s := res[gr]
		if !s.listable || archive.NeverBackedUp(gr) || !f.resource(gr, s.namespaced) {
			continue
		}
		namespaces := []string{""}
		if s.namespaced && !all(f.f.IncludedNamespaces) {
			namespaces = f.f.IncludedNamespaces
		}
		for _, ns := range namespaces {
			if err := r.writeResource(ctx, aw, gr, s, ns, f, pr, out); err != nil {
				if out.err != nil {
					return out.err
				}
				pr.fail(gr, ns, "", "listing: "+err.Error())
			}
		}
	}
	return nil
}

// writeResource writes the objects of one resource (in ns, "" for all).
func (r *Runner) writeResource(ctx context.Context, aw *archive.Writer, gr schema.GroupResource, s served, ns string, f *filter, pr *progress, out *sink) error {
	opts := metav1.ListOptions{Limit: pageSize, LabelSelector: f.sel.String()}
	for {
		list, err := r.Dynamic.Resource(s.gvr).Namespace(ns).List(ctx, opts)
		if err != nil {
			return err
		}
		for i := range list.Items {
			o := &list.Items[i]
			if !f.object(gr, o.GetNamespace(), o.GetName(), o.GetLabels()) {
				continue
			}
			if err := aw.Add(gr, s.gvr.Version, true, o); err != nil {
				if out.err != nil {
					return err // the archive cannot be written: nothing more can
				}
				pr.fail(gr, o.GetNamespace(), o.GetName(), err.Error())
				pr.add(1, 0, 0)
				continue
			}
			pr.add(1, 1, 0)
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

func compareGR(a, b schema.GroupResource) int {
	if a.Group != b.Group {
		if a.Group < b.Group {
			return -1
		}
		return 1
	}
	if a.Resource < b.Resource {
		return -1
	} else if a.Resource > b.Resource {
		return 1
	}
	return 0
}

// putResourceList stores Velero's resource list beside the archive.
func putResourceList(ctx context.Context, st interface {
	Put(context.Context, string, io.Reader, int64) error
}, key string, list map[string][]string) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(list); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := st.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return fmt.Errorf("storing the resource list: %v", err)
	}
	return nil
}

// sink is where the archive is written: the upload's pipe, hashed and
// counted. It keeps the first write error: the upload failed.
type sink struct {
	mu  sync.Mutex
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		s.err = err
	}
	return n, err
}
