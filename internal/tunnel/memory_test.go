package tunnel

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/netwait"
)

// BenchmarkIdleTunnelMemory holds b.N connections over TLS on loopback, as
// heartbeat streams, makes a tunnel of each and sends one request through
// it, and reports what a tunnel adds to an idle connection at the hub's
// end: heap and goroutine stacks, each connection with a goroutine waiting
// to read it before and after. The agents' ends run in a child process
// (agentEnds), so that only the hub's end is counted.
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
	n := max(b.N, 200)
	child := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	child.Env = append(os.Environ(), agentEndsHub+"="+l.Addr().String(), agentEndsCount+"="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe() // closed, it stops the child
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		child.Process.Kill()
		child.Wait()
	}()
	hubEnds := make([]net.Conn, n)
	for i := range n {
		c, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.(*tls.Conn).Handshake(); err != nil {
			b.Fatal(err)
		}
		hubEnds[i] = c
	}
	// Each connection has a goroutine waiting for its next report, as
	// the hub's streams do: first on the plain connection, in the poller,
	// then on its tunnel's heartbeat stream.
	waiting := make(chan struct{}, n)
	for _, c := range hubEnds {
		wait := netwait.TLS(c)
		go func() {
			waiting <- struct{}{}
			wait() // ends at the deadline below
		}()
	}
	for range n {
		<-waiting
	}
	heap0, stacks0, goroutines0 := memory()
	for _, c := range hubEnds {
		c.SetReadDeadline(time.Now())
	}
	h := NewHub(func(string) bool { return true })
	for i := range n {
		cluster := fmt.Sprintf("c%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		h.RoundTripper(ctx, cluster) // asks
		cancel()
		hubEnds[i].SetReadDeadline(time.Time{})
		hb, err := h.Take(cluster, hubEnds[i], nil)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for hb.(interface{ Wait() error }).Wait() == nil {
				io.CopyN(io.Discard, hb, 1)
			}
		}()
		rt, err := h.RoundTripper(context.Background(), cluster)
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "http://"+cluster+"/version", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The requests' streams are closed once idle.
	time.Sleep(6 * time.Second)
	heap, stacks, goroutines := memory()
	b.ReportMetric(float64(heap-heap0)/float64(n)/1024, "heap-KB/tunnel")
	b.ReportMetric(float64(stacks-stacks0)/float64(n)/1024, "stack-KB/tunnel")
	b.ReportMetric(float64(goroutines-goroutines0)/float64(n), "goroutines/tunnel")
}

// The child process of BenchmarkIdleTunnelMemory: agentEndsCount
// connections to agentEndsHub, each an agent's end of a tunnel.
const (
	agentEndsHub   = "TUNNEL_BENCH_HUB"
	agentEndsCount = "TUNNEL_BENCH_AGENTS"
)

func TestMain(m *testing.M) {
	if hub := os.Getenv(agentEndsHub); hub != "" {
		if err := agentEnds(hub, os.Getenv(agentEndsCount)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// agentEnds dials count connections to hub and serves "ok" on each as an
// agent's end of a tunnel, until stdin closes.
func agentEnds(hub, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for range n {
		c, err := tls.Dial("tcp", hub, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		go Agent(c, nil, ok, stop)
	}
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func memory() (heap, stacks int64, goroutines int) {
	// A parked goroutine's stack shrinks by half a collection, if at all.
	for range 4 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.StackInuse), runtime.NumGoroutine()
}
