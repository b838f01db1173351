package tunnel

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkRoundTrip times a small request through a tunnel over TLS on
// loopback, one at a time and from many clients at once, against the same
// requests to the same handler over a TLS connection of their own.
func BenchmarkRoundTrip(b *testing.B) {
	body := make([]byte, 3<<10) // about a pod's JSON
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	cfg := selfSigned(b)

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

	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	defer srv.Close()
	direct := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 128}

	for _, path := range []struct {
		name string
		rt   http.RoundTripper
		url  string
	}{{"tunnel", rt, "http://east/"}, {"direct", direct, "https://" + l.Addr().String() + "/"}} {
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

func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"}, NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
