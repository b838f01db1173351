package tunnel

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// BenchmarkIdleTunnelMemory opens b.N tunnels over TLS on loopback, sends
// one request through each, and reports what the hub's side holds per idle
// tunnel: heap and goroutine stacks (the agents' sides run in this process
// too, and are counted separately by subtracting a run without the hub).
func BenchmarkIdleTunnelMemory(b *testing.B) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	srv.Close()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	n := b.N
	if n < 200 {
		n = 200
	}
	var h *Hub
	dial := make(chan string, n)
	h = NewHub(func(cluster string) bool { dial <- cluster; return true })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				var name [16]byte
				k, _ := io.ReadFull(c, name[:])
				h.Accept(string(name[:k]), c)
			}()
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	go func() {
		for cluster := range dial {
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				panic(err)
			}
			io.WriteString(c, cluster)
			go Serve(c, ok, stop)
		}
	}()
	before := heapAndStacks()
	for i := range n {
		rt, err := h.RoundTripper(context.Background(), fmt.Sprintf("c%015d", i))
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "http://c/version", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond)
	after := heapAndStacks()
	b.ReportMetric(float64(after-before)/float64(n)/1024, "KB/tunnel(both-ends)")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/tunnel(both-ends)")
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

var _ net.Conn
