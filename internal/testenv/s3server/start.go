package s3server

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/procs"
)

const (
	healthPath   = "/healthz"
	startTimeout = 30 * time.Second
	stopGrace    = 10 * time.Second
)

func start(t testing.TB, useTLS bool) *Server {
	t.Helper()
	bin, err := Binary(t.Logf)
	if err != nil {
		t.Fatalf("s3server: %v", err)
	}
	// TempDir first: cleanups run last-in first-out, so the server is
	// stopped before its directory is removed.
	dir := t.TempDir()
	s := &Server{
		AccessKey: "flotilla-test",
		SecretKey: randomHex(20),
		Region:    "us-east-1",
		Dir:       filepath.Join(dir, "data"),
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatalf("s3server: %v", err)
	}
	var tlsArgs []string
	scheme := "http"
	if useTLS {
		cert, key, ca, err := writeTLS(dir)
		if err != nil {
			t.Fatalf("s3server: TLS certificate: %v", err)
		}
		tlsArgs = []string{"--cert", cert, "--key", key}
		s.CACert = ca
		scheme = "https"
	}
	logFile := filepath.Join(dir, "versitygw.log")
	// A free port may be taken before versitygw binds it; then try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("s3server: %v", err)
		}
		s.Endpoint = scheme + "://127.0.0.1:" + strconv.Itoa(port)
		args := append([]string{
			"--port", "127.0.0.1:" + strconv.Itoa(port),
			"--region", s.Region,
			"--health", healthPath,
			"--quiet",
		}, tlsArgs...)
		args = append(args, "posix", s.Dir)
		p, err := procs.Start("versitygw", bin, args, logFile,
			"ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
		if err != nil {
			t.Fatalf("s3server: %v", err)
		}
		t.Cleanup(func() { p.Stop(stopGrace) })
		err = s.waitReady(p)
		if err == nil {
			break
		}
		p.Stop(stopGrace)
		log, _ := os.ReadFile(logFile)
		if attempt < 3 && bytes.Contains(log, []byte("address already in use")) {
			continue
		}
		t.Fatalf("s3server: versitygw (%s) did not start: %v\nits output (%s):\n%s", bin, err, logFile, log)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("s3server: versitygw output:\n%s", log)
		}
	})
	return s
}

// waitReady polls the health endpoint until it answers, p exits, or
// startTimeout passes.
func (s *Server) waitReady(p *procs.Proc) error {
	c := &http.Client{Timeout: time.Second}
	if s.CACert != nil {
		c.Transport = s.transport()
	}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := c.Get(s.Endpoint + healthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v", startTimeout, err)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited: %v", p.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
