package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestRequestsCrossTheTunnel: the hub asks, the agent's connection is
// accepted, and requests flow through it to the agent's handler; a
// stream the agent opens towards the hub is closed unanswered.
func TestRequestsCrossTheTunnel(t *testing.T) {
	agentEnd := make(chan net.Conn, 1)
	var h *Hub
	h = NewHub(func(cluster string) bool {
		// The agent dials back at once, as a real one does when asked.
		hubConn, agentConn := net.Pipe()
		agentEnd <- agentConn
		go h.Accept(cluster, hubConn)
		return true
	})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		Serve(<-agentEnd, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Method+" "+r.URL.Path)
		}), stop)
	}()

	rt, err := h.RoundTripper(context.Background(), "east")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api", "/api/v1/pods"} {
		req, _ := http.NewRequest("GET", "http://east"+path, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "GET "+path {
			t.Fatalf("got %q", body)
		}
	}
	if h.Open() != 1 {
		t.Fatalf("%d tunnels open, want 1", h.Open())
	}
	// The same tunnel serves the next request: no second ask.
	if rt2, err := h.RoundTripper(context.Background(), "east"); err != nil || rt2 != rt {
		t.Fatalf("second RoundTripper: %v", err)
	}
	// Once it is open, another connection for the cluster is refused.
	second, other := net.Pipe()
	defer other.Close()
	if err := h.Accept("east", second); !errors.Is(err, ErrNotAsked) {
		t.Fatalf("a second tunnel while one is open: %v", err)
	}
	h.Close("east")
	if h.Open() != 0 {
		t.Fatal("tunnel still open after Close")
	}
}

func TestAgentCannotOpenStreamsToTheHub(t *testing.T) {
	h := NewHub(func(string) bool { return true })
	h.mu.Lock()
	h.tunnels["east"] = &hubTunnel{asked: time.Now(), open: make(chan struct{})}
	h.mu.Unlock()
	hubConn, agentConn := net.Pipe()
	go h.Accept("east", hubConn)
	sess, err := yamux.Server(agentConn, config(false))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	s, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(s, "GET /apis HTTP/1.1\r\nHost: hub\r\n\r\n")
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := s.Read(make([]byte, 64)); n != 0 || err == nil || errors.Is(err, yamux.ErrTimeout) {
		t.Fatalf("the hub answered a stream the agent opened: %d bytes, %v", n, err)
	}
}

func TestWhyATunnelIsMissing(t *testing.T) {
	notConnected := NewHub(func(string) bool { return false })
	if _, err := notConnected.RoundTripper(context.Background(), "east"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("no stream: %v", err)
	}
	silent := NewHub(func(string) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := silent.RoundTripper(ctx, "east"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an agent that never dials: %v", err)
	}
	a, b := net.Pipe()
	defer b.Close()
	if err := NewHub(func(string) bool { return true }).Accept("west", a); !errors.Is(err, ErrNotAsked) || !strings.Contains(err.Error(), "did not ask") {
		t.Fatalf("an unasked tunnel: %v", err)
	}
}
