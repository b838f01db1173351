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

	hub := asked(b, "east")
	stop := make(chan struct{})
	defer close(stop)
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
