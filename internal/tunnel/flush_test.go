package tunnel

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOnlyStreamingResponsesAreFlushed(t *testing.T) {
	for _, c := range []struct {
		method, target string
		upgrade        bool
		streams        bool
	}{
		{"GET", "/api/v1/namespaces/a/pods/web-0", false, false},
		{"GET", "/api/v1/namespaces/a/pods?limit=500", false, false},
		{"POST", "/apis/apps/v1/namespaces/a/deployments", false, false},
		{"GET", "/apis/apps/v1/deployments?watch=true", false, true},
		{"GET", "/api/v1/watch/namespaces/a/pods", false, true},
		{"GET", "/api/v1/namespaces/a/pods/web-0/log?follow=true", false, true},
		{"POST", "/api/v1/namespaces/a/pods/web-0/exec?command=sh", true, true},
		{"GET", "/api/v1/namespaces/a/services/web:80/proxy/", false, true},
		{"GET", "/version", false, false},
	} {
		r := httptest.NewRequest(c.method, "http://hub/elsewhere?"+queryOf(c.target), nil)
		if c.upgrade {
			r.Header.Set("Upgrade", "websocket")
		}
		_, flushed := Writer(httptest.NewRecorder(), r, pathOf(c.target)).(*httptest.ResponseRecorder)
		if flushed != c.streams {
			t.Errorf("%s %s: flushed as it comes %v, want %v", c.method, c.target, flushed, c.streams)
		}
	}
}

func pathOf(target string) string {
	r, _ := http.NewRequest("GET", target, nil)
	return r.URL.Path
}

func queryOf(target string) string {
	r, _ := http.NewRequest("GET", target, nil)
	return r.URL.RawQuery
}
