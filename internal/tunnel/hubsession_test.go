package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// roundTrip sends a request to cluster through h's tunnel.
func roundTrip(h *Hub, cluster, path string, body []byte) (*http.Response, error) {
	rt, err := h.RoundTripper(context.Background(), cluster)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest("POST", "http://"+cluster+path, bytes.NewReader(body))
	return rt.RoundTrip(req)
}

// Bodies of several windows flow both ways: each end tells the other
// what it has read.
func TestBodiesLongerThanAWindow(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) }), stop)
	sent := make([]byte, 5*streamWindow+123)
	rand.Read(sent)
	resp, err := roundTrip(h, "east", "/echo", sent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("echoed %d of %d bytes, equal %v: %v", len(got), len(sent), bytes.Equal(got, sent), err)
	}
}

// A response nobody reads fills its own window only: another request on
// the same tunnel goes through.
func TestAnUnreadStreamStallsOnlyItself(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	big := make([]byte, 4*streamWindow)
	pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		io.WriteString(w, "small")
	}), stop)
	stalled, err := roundTrip(h, "east", "/big", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Body.Close()
	done := make(chan error, 1)
	go func() {
		resp, err := roundTrip(h, "east", "/small", nil)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && string(b) != "small" {
				err = errors.New("read " + string(b))
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request waited behind a response nobody reads")
	}
}

// The heartbeat stream's read deadline holds while a request's stream,
// with none, is reading the connection for both.
func TestHeartbeatDeadlineWhileARequestWaits(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	hubHB, _ := pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stop }), stop)
	go roundTrip(h, "east", "/hang", nil)
	time.Sleep(100 * time.Millisecond) // the request's reader takes its turn
	start := time.Now()
	hubHB.SetReadDeadline(start.Add(200 * time.Millisecond))
	_, err := hubHB.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the heartbeat stream's read ended with %v, want a timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a read with a deadline 200 ms away returned after %s", took)
	}
}

// The hub answers the agent's keepalives while it reads its heartbeat
// stream, as it always does.
func TestHubAnswersKeepalives(t *testing.T) {
	h := asked(t, "east")
	sess := agentSession(t, h, "east")
	for range 3 {
		if _, err := sess.Ping(); err != nil {
			t.Fatalf("the hub did not answer a keepalive: %v", err)
		}
	}
}

// A frame the protocol does not allow ends the tunnel, saying so, and the
// hub forgets it.
func TestBadFrameEndsTheTunnel(t *testing.T) {
	for name, frame := range map[string]header{
		"unknown version":       {9},
		"unknown type":          frameHeader(7, 0, 1, 0),
		"data over the window":  frameHeader(typeData, 0, 1, streamWindow+1),
		"reopening hub streams": frameHeader(typeWindowUpdate, flagSYN, 1, 0),
	} {
		t.Run(name, func(t *testing.T) {
			h := asked(t, "east")
			hubConn, agentConn := tcpPipe(t)
			go func() {
				first := make([]byte, headerSize) // the hub's SYN
				io.ReadFull(agentConn, first)
				agentConn.Write(frame[:])
			}()
			hb, err := h.Take("east", hubConn, nil)
			if err != nil {
				t.Fatal(err)
			}
			hb.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, hb)
			if !errors.Is(err, errProtocol) {
				t.Fatalf("the heartbeat stream ended with %v, want a protocol error", err)
			}
			if h.Open() != 0 {
				t.Fatal("the hub kept a broken tunnel")
			}
		})
	}
}

// An agent that sends a stream more than its window, which nobody has read,
// ends the tunnel.
func TestDataPastTheWindowEndsTheTunnel(t *testing.T) {
	h := asked(t, "east")
	hubConn, agentConn := tcpPipe(t)
	go func() {
		syns := make([]byte, 2*headerSize) // the heartbeat stream's, a request's
		io.ReadFull(agentConn, syns)
		full := frameHeader(typeData, 0, 1, streamWindow)
		agentConn.Write(append(full[:], make([]byte, streamWindow)...))
		one := frameHeader(typeData, 0, 1, 1)
		agentConn.Write(append(one[:], 0))
	}()
	hb, err := h.Take("east", hubConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A request's stream reads the connection; the heartbeat stream's
	// window fills, unread.
	req, err := h.dial(context.Background(), "tcp", "east:443")
	if err != nil {
		t.Fatal(err)
	}
	req.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := req.Read(make([]byte, 1)); !errors.Is(err, errProtocol) {
		t.Fatalf("the request's stream ended with %v, want a protocol error", err)
	}
	if n, err := io.Copy(io.Discard, hb); n != streamWindow || !errors.Is(err, errProtocol) {
		t.Fatalf("the heartbeat stream gave %d bytes, then %v; want the window, then a protocol error", n, err)
	}
	if h.Open() != 0 {
		t.Fatal("the hub kept a broken tunnel")
	}
}

// More requests at once than the agent's backlog all go through: the hub
// opens no more streams than the agent will accept.
func TestConcurrentRequestsPastTheBacklog(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, "ok")
	}), stop)
	const n = 10 * acceptBacklog
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := roundTrip(h, "east", "/", nil)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A response the hub's client stops reading ends at the agent too: its
// writer fails instead of waiting for a window that never opens.
func TestAClosedStreamStopsTheAgentsWriter(t *testing.T) {
	h := asked(t, "east")
	stop := make(chan struct{})
	defer close(stop)
	ended := make(chan struct{})
	pair(t, h, "east", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), stop)
	resp, err := roundTrip(h, "east", "/endless", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's handler still writes a response the hub closed")
	}
}
