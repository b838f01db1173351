package failover

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// deadHost is an address nothing listens on.
func deadHost(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func serve(t *testing.T, name string, status int) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		io.WriteString(w, name+":"+string(body))
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func post(t *testing.T, rt http.RoundTripper, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://unused.invalid/x", strings.NewReader(body))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMovesOnFromUnreachableAndSkippedServers(t *testing.T) {
	dead := deadHost(t)
	standby := serve(t, "standby", http.StatusServiceUnavailable)
	leader := serve(t, "leader", http.StatusOK)
	rt := &Transport{Base: http.DefaultTransport, Skip: func(r *http.Response) bool { return r.StatusCode == http.StatusServiceUnavailable }}
	rt.SetHosts([]string{dead, standby, leader, "", leader})

	// The body reaches the third server whole.
	if code, body := post(t, rt, "report"); code != http.StatusOK || body != "leader:report" {
		t.Fatalf("got %d %q, want the leader's 200 with the body", code, body)
	}
	// The server that answered is tried first from then on.
	if got := rt.Hosts(); len(got) != 3 || got[0] != leader {
		t.Fatalf("hosts %v: want %s first and no duplicates or blanks", got, leader)
	}
	// Hosts set again keep the preferred one first.
	rt.SetHosts([]string{dead, standby, leader})
	if got := rt.Hosts(); got[0] != leader {
		t.Fatalf("hosts %v: want %s kept first", got, leader)
	}
}

func TestEveryServerSkippingReturnsTheLastAnswer(t *testing.T) {
	standby := serve(t, "standby", http.StatusServiceUnavailable)
	rt := &Transport{Base: http.DefaultTransport, Skip: func(r *http.Response) bool { return r.StatusCode == http.StatusServiceUnavailable }}
	rt.SetHosts([]string{deadHost(t), standby})
	if code, body := post(t, rt, "x"); code != http.StatusServiceUnavailable || body != "standby:x" {
		t.Fatalf("got %d %q, want the standby's own answer", code, body)
	}
}

func TestNoServerReachableIsTheDialError(t *testing.T) {
	rt := &Transport{Base: http.DefaultTransport}
	rt.SetHosts([]string{deadHost(t), deadHost(t)})
	req, _ := http.NewRequest(http.MethodGet, "http://unused.invalid/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("got %v, want connection refused", err)
	}
}
