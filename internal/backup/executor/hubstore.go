package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/store"
)

// hubStore is a hub location as an agent reaches it: through the hub's
// agent endpoint, over the agent's mutual TLS. It can put, get and stat
// the objects of the agent's own jobs; nothing else.
type hubStore struct {
	rt       http.RoundTripper
	base     string // https://HUB:PORT
	location string
}

func (h *hubStore) url(key string) string { return h.base + jobs.StorePath + h.location + "/" + key }

func (h *hubStore) do(ctx context.Context, method, key string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.url(key), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size // -1: chunked
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := h.rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("hub location %s: %s %s: %w", h.location, method, key, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	err = fmt.Errorf("hub location %s: %s %s: %s: %s", h.location, method, key, resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return nil, err
}

func (h *hubStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	resp, err := h.do(ctx, http.MethodPut, key, r, size)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (h *hubStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := h.do(ctx, http.MethodGet, key, nil, 0)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (h *hubStore) Stat(ctx context.Context, key string) (int64, error) {
	resp, err := h.do(ctx, http.MethodHead, key, nil, 0)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
}

var errAgentCannot = errors.New("an agent only puts and gets the objects of its own jobs in a hub location")

func (h *hubStore) List(context.Context, string) ([]string, error) { return nil, errAgentCannot }
func (h *hubStore) Move(context.Context, string, string) error     { return errAgentCannot }
func (h *hubStore) Delete(context.Context, string) error           { return errAgentCannot }
func (h *hubStore) Check(context.Context) error                    { return nil }

// Open returns the store a job's location is reached by: the hub's agent
// endpoint at base through rt for a hub location, the bucket for S3.
func Open(loc jobs.Location, rt http.RoundTripper, base string) (store.Store, error) {
	switch {
	case loc.S3 != nil:
		return store.NewS3(*loc.S3)
	case loc.Type == "hub":
		return &hubStore{rt: rt, base: base, location: loc.Name}, nil
	}
	return nil, fmt.Errorf("backup location %s: type %q cannot be reached from an agent", loc.Name, loc.Type)
}
