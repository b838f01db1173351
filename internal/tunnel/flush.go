package tunnel

import (
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server/filters"
)

// Writer returns w for the response to r, a request for path on a
// cluster's apiserver. A response that may stream (a watch, logs, exec) is
// flushed as it comes; any other is written whole when done, in one frame
// with its end, rather than as a frame per flush and one more to end it:
// each frame was a write and a wakeup at both ends of the tunnel and of the
// client's connection, and they were much of a single GET's added time.
// Bodies larger than the server's buffer still go out as they are copied.
func Writer(w http.ResponseWriter, r *http.Request, path string) http.ResponseWriter {
	if streams(r, path) {
		return w
	}
	return unflushed{w}
}

// streams says whether a request for path may stream its response, as
// kube-apiserver classes its long-running requests.
func streams(r *http.Request, path string) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	shallow := *r
	shallow.URL = &url.URL{Path: path, RawQuery: r.URL.RawQuery}
	info, err := requestInfos.NewRequestInfo(&shallow)
	return err != nil || longRunning(&shallow, info)
}

var (
	requestInfos = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	longRunning  = filters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"),
	)
)

// unflushed is a ResponseWriter whose flushes wait for the end of the
// response or a full buffer.
type unflushed struct{ http.ResponseWriter }

func (unflushed) Flush() {}

// Unwrap lets http.ResponseController reach the writer's other features,
// but not its Flush: ResponseController calls Flush on unflushed first.
func (u unflushed) Unwrap() http.ResponseWriter { return u.ResponseWriter }
