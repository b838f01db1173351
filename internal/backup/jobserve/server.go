package jobserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/locations"
	"flotilla.dev/flotilla/internal/backup/store"
)

// maxReport bounds a report: a hundred messages and some counts.
const maxReport = 256 << 10

// Server answers agents under heartbeat.DataPrefix.
type Server struct {
	// Client reads and writes Backups and Restores (cached reads).
	Client client.Client
	// Locations opens BackupLocations.
	Locations *locations.Opener
	// ClusterOf is the cluster a request's agent answers for.
	ClusterOf func(context.Context) string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cluster := s.ClusterOf(r.Context())
	if cluster == "" {
		http.Error(w, "no cluster identity", http.StatusForbidden)
		return
	}
	var err error
	switch {
	case r.URL.Path == jobs.ListPath && r.Method == http.MethodGet:
		err = s.list(w, r, cluster)
	case r.URL.Path == jobs.ReportPath && r.Method == http.MethodPost:
		err = s.report(r, cluster)
	case strings.HasPrefix(r.URL.Path, jobs.StorePath):
		err = s.object(w, r, cluster, strings.TrimPrefix(r.URL.Path, jobs.StorePath))
	default:
		err = statusError{http.StatusNotFound, "no such path: " + r.URL.Path}
	}
	if err != nil {
		code := http.StatusInternalServerError
		var se statusError
		var api apierrors.APIStatus
		switch {
		case errors.As(err, &se):
			code = se.code
		case errors.Is(err, store.ErrNotFound):
			code = http.StatusNotFound
		case errors.As(err, &api) && api.Status().Code != 0:
			// A job deleted meanwhile is 404 to its agent, which then
			// stops reporting it; the hub's own trouble stays 5xx.
			code = int(api.Status().Code)
		}
		http.Error(w, err.Error(), code)
	}
}

// statusError is an error with the HTTP status it is answered with.
type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string { return e.msg }

func forbidden(format string, args ...any) error {
	return statusError{http.StatusForbidden, fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// list answers the cluster's open jobs.
func (s *Server) list(w http.ResponseWriter, r *http.Request, cluster string) error {
	js, err := s.jobsOf(r.Context(), cluster)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(jobs.List{Jobs: js})
}

// report takes an agent's progress on one of its cluster's jobs.
func (s *Server) report(r *http.Request, cluster string) error {
	var rep jobs.Report
	if err := json.NewDecoder(io.LimitReader(r.Body, maxReport)).Decode(&rep); err != nil {
		return badRequest("malformed report: %v", err)
	}
	switch rep.Kind {
	case jobs.KindBackup:
		return s.reportBackup(r.Context(), cluster, rep)
	case jobs.KindRestore:
		return s.reportRestore(r.Context(), cluster, rep)
	}
	return badRequest("unknown job kind %q", rep.Kind)
}

// object serves PUT, GET and HEAD of an object of a hub location, for the
// objects the cluster's open jobs name.
func (s *Server) object(w http.ResponseWriter, r *http.Request, cluster, path string) error {
	locName, key, ok := strings.Cut(path, "/")
	if !ok || locName == "" || key == "" {
		return badRequest("want %sLOCATION/KEY", jobs.StorePath)
	}
	write := r.Method == http.MethodPut
	if !write && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return statusError{http.StatusMethodNotAllowed, "PUT, GET or HEAD"}
	}
	if err := s.mayUse(r.Context(), cluster, locName, key, write); err != nil {
		return err
	}
	loc, err := locations.Get(r.Context(), s.Client, locName)
	if err != nil {
		return err
	}
	if loc.Spec.Type != fv1.LocationHub {
		return badRequest("backup location %s is not a hub location: reach it directly", locName)
	}
	st, err := s.Locations.Hub(locName)
	if err != nil {
		return err
	}
	if write {
		size := r.ContentLength
		if size < 0 {
			size = -1
		}
		return st.Put(r.Context(), key, r.Body, size)
	}
	size, err := st.Stat(r.Context(), key)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		return nil
	}
	rc, err := st.Get(r.Context(), key)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}
