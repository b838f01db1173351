package s3server

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func init() {
	if !testing.Testing() {
		panic("s3server is for tests only: it builds and runs an S3 server")
	}
}

// Server is a running S3 server.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT, or https:// from StartTLS.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	Region               string
	// CACert is the PEM of the CA that signed a StartTLS server's
	// certificate; nil for plain HTTP.
	CACert []byte
	// Dir is the POSIX backend's root: each bucket is a folder in it.
	Dir string
}

// Start starts a server over plain HTTP. It is stopped by t.Cleanup, also
// when the test fails; a server that cannot start fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start over HTTPS with a certificate for 127.0.0.1 signed by a
// fresh CA, whose PEM is in CACert.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// CreateBucket creates bucket name, failing the test if it cannot.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.Client(t).MakeBucket(t.Context(), name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("s3server: create bucket %q: %v", name, err)
	}
}

// Client returns a client with the root credentials, to set up or inspect
// what the code under test cannot.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	opts := &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	}
	host := s.Endpoint[len("http://"):]
	if s.CACert != nil {
		host = s.Endpoint[len("https://"):]
		opts.Secure = true
		opts.Transport = s.transport()
	}
	c, err := minio.New(host, opts)
	if err != nil {
		t.Fatalf("s3server: client: %v", err)
	}
	return c
}

// transport trusts CACert, for StartTLS servers.
func (s *Server) transport() *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACert)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig.RootCAs = pool
	return t
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
