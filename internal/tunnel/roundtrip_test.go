package tunnel

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRoundTrip times a small request through a tunnel over TLS on
// loopback, one at a time and from many clients at once, against the same
// requests to the same handler over a TLS connection of their own.
func BenchmarkRoundTrip(b *testing.B) {
	body := make([]byte, 3<<10) // about a pod's JSON
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	direct := srv.Client().Transport.(*http.Transport)
	direct.MaxIdleConnsPerHost = 128
	cfg := &tls.Config{Certificates: srv.TLS.Certificates}

	rt := benchTunnel(b, h, cfg)

	for _, path := range []struct {
		name string
		rt   http.RoundTripper
		url  string
	}{{"tunnel", rt, "http://east/"}, {"direct", direct, srv.URL + "/"}} {
		get := func(b *testing.B) {
			req, _ := http.NewRequest("GET", path.url, nil)
			resp, err := path.rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.Run(path.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				get(b)
			}
		})
		b.Run(path.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(50)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b)
				}
			})
		})
	}
}

// BenchmarkFlushedResponse times a small response that the handler
// flushes, as a reverse proxy flushes a body of unknown length, through a
// tunnel: sent as flushed, and as Writer sends a response that does not
// stream, whole.
func BenchmarkFlushedResponse(b *testing.B) {
	body := make([]byte, 3<<10)
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cfg := &tls.Config{Certificates: srv.TLS.Certificates}
	for _, whole := range []bool{false, true} {
		rt := benchTunnel(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if whole {
				w = Writer(w, r, r.URL.Path)
			}
			w.Write(body)
			w.(http.Flusher).Flush()
		}), cfg)
		b.Run(map[bool]string{false: "flushed", true: "whole"}[whole], func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest("GET", "http://east/api/v1/namespaces/a/pods/web-0", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// benchTunnel opens a tunnel to cluster east over TLS on loopback, whose
// agent serves h, and returns the hub's transport through it. The tunnel
// ends with the benchmark.
func benchTunnel(b *testing.B, h http.Handler, cfg *tls.Config) http.RoundTripper {
	hub := asked(b, "east")
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	hubConn, agentConn := tlsPipe(b, cfg)
	agent := make(chan error, 1)
	go func() {
		hb, err := Agent(agentConn, nil, h, stop)
		if err == nil {
			go io.Copy(io.Discard, hb)
		}
		agent <- err
	}()
	hb, err := hub.Take("east", hubConn, nil)
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, hb) // the tracker waits on the heartbeat stream so
	if err := <-agent; err != nil {
		b.Fatal(err)
	}
	rt, err := hub.RoundTripper(context.Background(), "east")
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// tlsPipe is tcpPipe under TLS, the hub's end the server's.
func tlsPipe(t testing.TB, cfg *tls.Config) (net.Conn, net.Conn) {
	t.Helper()
	a, b := tcpPipe(t)
	server := tls.Server(b, cfg)
	client := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return server, client
}
