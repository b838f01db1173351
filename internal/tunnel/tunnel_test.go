package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// pair makes a tunnel of a connection between a hub and an agent end, as a
// heartbeat stream's switch does, and returns both ends' heartbeat
// connections. The agent serves h.
func pair(t *testing.T, hub *Hub, cluster string, h http.Handler, stop <-chan struct{}) (net.Conn, io.ReadWriteCloser) {
	t.Helper()
	hubConn, agentConn := tcpPipe(t)
	type result struct {
		c   io.ReadWriteCloser
		err error
	}
	agent := make(chan result, 1)
	go func() {
		c, err := Agent(agentConn, nil, h, stop)
		agent <- result{c, err}
	}()
	hb, err := hub.Take(cluster, hubConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := <-agent
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { hb.Close() })
	return hb, a.c
}

// tcpPipe returns the two ends of a loopback TCP connection, which buffer
// as the hub's and the agent's connections do (net.Pipe's do not).
func tcpPipe(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// agentSession takes a tunnel for cluster, asked of h, whose heartbeat
// stream the hub reads as it always does, and returns the agent's end: a
// yamux session with the heartbeat stream accepted.
func agentSession(t *testing.T, h *Hub, cluster string) *yamux.Session {
	t.Helper()
	hubConn, agentConn := tcpPipe(t)
	taken := make(chan error, 1)
	go func() {
		hb, err := h.Take(cluster, hubConn, nil)
		if err == nil {
			go io.Copy(io.Discard, hb)
		}
		taken <- err
	}()
	sess, err := yamux.Server(agentConn, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if _, err := sess.Accept(); err != nil { // the heartbeat stream
		t.Fatal(err)
	}
	if err := <-taken; err != nil {
		t.Fatal(err)
	}
	return sess
}

// asked is a Hub whose asks are answered by ask, and which has asked for
// cluster's tunnel.
func asked(t testing.TB, cluster string) *Hub {
	h := NewHub(func(string) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	h.RoundTripper(ctx, cluster) // asks, and gives up at once
	if !h.Asked(cluster) {
		t.Fatal("the hub did not record its ask")
	}
	return h
}

// TestRequestsAndHeartbeatShareTheConnection: once the hub takes the
// agent's switched connection, requests flow through it to the agent's
// handler while the heartbeat stream goes on over the same connection, both
// ways.
func TestRequestsAndHeartbeatShareTheConnection(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	hubHB, agentHB := pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path)
	}), stop)

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

	// The heartbeat stream: a report up, waited for without reading, and
	// a reply down.
	go io.WriteString(agentHB, "report\n")
	w, ok := hubHB.(interface{ Wait() error })
	if !ok {
		t.Fatal("the hub's heartbeat connection cannot wait for a report")
	}
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(hubHB, got); err != nil || string(got) != "report\n" {
		t.Fatalf("the hub read %q, %v", got, err)
	}
	go io.WriteString(hubHB, "reply\n")
	got = make([]byte, 6)
	if _, err := io.ReadFull(agentHB, got); err != nil || string(got) != "reply\n" {
		t.Fatalf("the agent read %q, %v", got, err)
	}

	// Once it is open, another connection for the cluster is refused.
	second, other := tcpPipe(t)
	defer other.Close()
	if _, err := h.Take("east", second, nil); !errors.Is(err, ErrNotAsked) {
		t.Fatalf("a second tunnel while one is open: %v", err)
	}

	// Closing the heartbeat stream closes the tunnel and its connection.
	hubHB.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.Open() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("tunnel still open after its heartbeat stream closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := agentHB.Read(make([]byte, 1)); err == nil {
		t.Fatal("the agent's heartbeat stream outlived its connection")
	}
}

// TestAgentCannotOpenStreamsToTheHub: the hub resets every stream the
// agent opens, while it reads its heartbeat stream, as the hub always does.
func TestAgentCannotOpenStreamsToTheHub(t *testing.T) {
	h := asked(t, "east")
	sess := agentSession(t, h, "east")
	for i := range 3 {
		s, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(s, "GET /apis HTTP/1.1\r\nHost: hub\r\n\r\n")
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := s.Read(make([]byte, 64)); n != 0 || !errors.Is(err, yamux.ErrConnectionReset) {
			t.Fatalf("stream %d the agent opened: %d bytes, %v; want it reset", i+1, n, err)
		}
	}
}

// TestIdleTunnelEndsItsConnection: a session that carries nothing but the
// heartbeat stream for the idle time is closed, and the heartbeat stream
// says why, so the agent opens its stream again, plain.
func TestIdleTunnelEndsItsConnection(t *testing.T) {
	hubConn, agentConn := tcpPipe(t)
	defer hubConn.Close()
	go yamux.Client(hubConn, config())
	sess, err := yamux.Server(agentConn, config())
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{sess: sess}
	if s.Stream, err = sess.OpenStream(); err != nil {
		t.Fatal(err)
	}
	go closeWhenIdle(sess, 100*time.Millisecond, nil, &s.idle)
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrIdle) {
		t.Fatalf("an idle tunnel's heartbeat stream ended with %v, want ErrIdle", err)
	}
}

func TestWhyATunnelIsMissing(t *testing.T) {
	notConnected := NewHub(func(string) bool { return false })
	if _, err := notConnected.RoundTripper(context.Background(), "east"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("no stream: %v", err)
	}
	var asks atomic.Int32
	silent := NewHub(func(string) bool { asks.Add(1); return true })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := silent.RoundTripper(ctx, "east"); !errors.Is(err, context.DeadlineExceeded) || asks.Load() != 1 {
		t.Fatalf("an agent that never answers: %v after %d asks", err, asks.Load())
	}
	a, b := tcpPipe(t)
	defer b.Close()
	if _, err := NewHub(func(string) bool { return true }).Take("west", a, nil); !errors.Is(err, ErrNotAsked) || !strings.Contains(err.Error(), "did not ask") {
		t.Fatalf("an unasked tunnel: %v", err)
	}
}

// TestBytesReadPastTheSwitchAreKept: the bytes an agent's stream reader
// read past the hub's last plain message are the session's first, and
// the tunnel starts from them.
func TestBytesReadPastTheSwitchAreKept(t *testing.T) {
	h := asked(t, "east")
	hubConn, agentConn := tcpPipe(t)
	taken := make(chan net.Conn, 1)
	go func() {
		hb, err := h.Take("east", hubConn, nil)
		if err != nil {
			t.Error(err)
		}
		taken <- hb
	}()
	// The header of the hub's first frame, as a reader buffering ahead
	// would have read it.
	first := make([]byte, 12)
	if _, err := io.ReadFull(agentConn, first); err != nil {
		t.Fatal(err)
	}
	agentHB, err := Agent(agentConn, first, http.NotFoundHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hubHB := <-taken
	if hubHB == nil {
		t.FailNow()
	}
	defer hubHB.Close()
	go io.WriteString(hubHB, "hello")
	got := make([]byte, 5)
	if _, err := io.ReadFull(agentHB, got); err != nil || string(got) != "hello" {
		t.Fatalf("the agent read %q, %v", got, err)
	}
}
