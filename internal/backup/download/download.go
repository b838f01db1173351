// Package download serves backup archives from the hub's apiserver, so
// that `flotilla backup download` works with the hub's credentials
// whatever the location: a hub location's archive is on the hub's disk,
// out of a user's reach. The path sits behind the apiserver's
// authentication, authorization (verb get on backups in group
// archive.flotilla.dev, resource name = the backup) and audit.
package download

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/locations"
)

// Group is the API group of the path, apart from flotilla.dev so that it
// cannot clash with what the CRDs serve.
const Group = "archive.flotilla.dev"

// Prefix is the path prefix the handler serves.
const Prefix = "/apis/" + Group + "/v1alpha1/backups/"

// Path is where backup name's archive is served.
func Path(name string) string { return Prefix + name }

// ChecksumHeader carries the archive's recorded checksum.
const ChecksumHeader = "Flotilla-Checksum"

// Handler serves archives; it answers 503 until Serve gives it what it needs.
type Handler struct {
	deps atomic.Pointer[deps]
}

type deps struct {
	c    client.Reader
	locs *locations.Opener
}

// Serve starts answering, reading Backups with c and opening locations with locs.
func (h *Handler) Serve(c client.Reader, locs *locations.Opener) {
	h.deps.Store(&deps{c: c, locs: locs})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := h.deps.Load()
	if d == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the hub is starting; retry", http.StatusServiceUnavailable)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || r.Method != http.MethodGet {
		http.Error(w, "GET "+Prefix+"BACKUP downloads a backup's archive", http.StatusNotFound)
		return
	}
	var b fv1.Backup
	if err := d.c.Get(r.Context(), client.ObjectKey{Name: name}, &b); err != nil {
		http.Error(w, fmt.Sprintf("backup %s: %v", name, err), http.StatusNotFound)
		return
	}
	if b.Status.Phase != fv1.PhaseCompleted && b.Status.Phase != fv1.PhasePartiallyFailed {
		http.Error(w, fmt.Sprintf("backup %s is %s: only a finished backup has an archive", name, b.Status.Phase), http.StatusConflict)
		return
	}
	loc, err := locations.Get(r.Context(), d.c, b.Status.StorageLocation)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	st, err := d.locs.Open(r.Context(), loc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	key := jobs.ArchiveKey(name)
	size, err := st.Stat(r.Context(), key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	rc, err := st.Get(r.Context(), key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set(ChecksumHeader, b.Status.Checksum)
	io.Copy(w, rc)
}
