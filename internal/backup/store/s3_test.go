package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"flotilla.dev/flotilla/internal/testenv/s3server"
)

func TestS3(t *testing.T) {
	srv := s3server.Start(t)
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		bucket := fmt.Sprintf("suite-%d", n)
		srv.CreateBucket(t, bucket)
		return newS3(t, srv, S3Config{Bucket: bucket, Prefix: "velero/hub"})
	})
}

// newS3 returns a store on srv with its credentials; c names the bucket and
// anything else the test needs.
func newS3(t *testing.T, srv *s3server.Server, c S3Config) *S3 {
	t.Helper()
	if c.Endpoint == "" {
		c.Endpoint = srv.Endpoint
	}
	c.Region = srv.Region
	c.PathStyle = true
	if c.AccessKey == "" {
		c.AccessKey = srv.AccessKey
	}
	if c.SecretKey == "" {
		c.SecretKey = srv.SecretKey
	}
	s, err := NewS3(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3PrefixIsolation(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "shared")
	a := newS3(t, srv, S3Config{Bucket: "shared", Prefix: "cluster-a"})
	b := newS3(t, srv, S3Config{Bucket: "shared", Prefix: "/cluster-b/"})
	whole := newS3(t, srv, S3Config{Bucket: "shared"})
	// "cluster" is a string prefix of "cluster-a" but not its folder.
	near := newS3(t, srv, S3Config{Bucket: "shared", Prefix: "cluster"})

	put(t, a, "backups/x/x.tar.gz", "from a")
	put(t, b, "backups/x/x.tar.gz", "from b")
	put(t, b, "backups/y/y.tar.gz", "only b")
	if got := get(t, a, "backups/x/x.tar.gz"); got != "from a" {
		t.Fatalf("a reads %q", got)
	}
	if got := get(t, b, "backups/x/x.tar.gz"); got != "from b" {
		t.Fatalf("b reads %q", got)
	}
	wantList(t, a, "", "backups/x/x.tar.gz")
	wantList(t, b, "", "backups/x/x.tar.gz", "backups/y/y.tar.gz")
	wantList(t, near, "")
	wantList(t, whole, "", "cluster-a/backups/x/x.tar.gz", "cluster-b/backups/x/x.tar.gz", "cluster-b/backups/y/y.tar.gz")
	if _, err := a.Stat(t.Context(), "backups/y/y.tar.gz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a sees b's key: %v", err)
	}
	if err := a.Delete(t.Context(), "backups/x/x.tar.gz"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "backups/x/x.tar.gz"); got != "from b" {
		t.Fatalf("a's Delete changed b's object to %q", got)
	}
}

func TestS3MultipartUnknownSize(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "big")
	s := newS3(t, srv, S3Config{Bucket: "big", Prefix: "p", PartSize: 5 << 20})
	const size = 20 << 20

	sum := sha256.New()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := s.Put(t.Context(), "backups/big/big.tar.gz", io.TeeReader(patterned(3, size), sum), -1); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	want := sum.Sum(nil)
	// Streaming buffers a part at a time (plus signing buffers), never the
	// whole object.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Put of %d MiB allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > 3*(5<<20) {
		t.Errorf("Put of %d MiB allocated %d MiB; it should buffer about one 5 MiB part", size>>20, alloc>>20)
	}

	if n, err := s.Stat(t.Context(), "backups/big/big.tar.gz"); err != nil || n != size {
		t.Fatalf("Stat = %d, %v; want %d", n, err, size)
	}
	r, err := s.Get(t.Context(), "backups/big/big.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := sha256.New()
	if _, err := io.Copy(got, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want) {
		t.Fatal("object read back differs from what was put")
	}
	// A multipart upload's ETag ends in -<number of parts>.
	info, err := srv.Client(t).StatObject(t.Context(), "big", "p/backups/big/big.tar.gz", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.ETag, "-4") {
		t.Fatalf("ETag %q does not show a 4-part upload", info.ETag)
	}
}

func TestS3InterruptedMultipartIsAborted(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "abort")
	s := newS3(t, srv, S3Config{Bucket: "abort", PartSize: 5 << 20})
	client := srv.Client(t)
	ctx := t.Context()

	// Two parts go up before the reader fails.
	err := s.Put(ctx, "backups/x/x.tar.gz", &failingReader{r: patterned(4, 20<<20), after: 12 << 20}, -1)
	if !errors.Is(err, errReader) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	if _, err := s.Stat(ctx, "backups/x/x.tar.gz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("interrupted Put left an object: Stat = %v", err)
	}
	if uploads := incompleteUploads(t, client, "abort"); len(uploads) != 0 {
		t.Fatalf("interrupted Put left multipart uploads: %q", uploads)
	}

	// The listing above can see an upload that was not aborted.
	if _, err := (minio.Core{Client: client}).NewMultipartUpload(ctx, "abort", "left/over", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if uploads := incompleteUploads(t, client, "abort"); len(uploads) != 1 {
		t.Fatalf("incomplete uploads = %q, want the one just started", uploads)
	}
}

func incompleteUploads(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for u := range c.ListIncompleteUploads(t.Context(), bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}

func TestS3MoveLargeObjectInParts(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "move")
	s := newS3(t, srv, S3Config{Bucket: "move", PartSize: 5 << 20})
	// Pretend the single-copy limit is 5 MiB so a 15 MiB object takes the
	// path that objects over 5 GiB take.
	s.copyLimit, s.copyPartSize = 5<<20, 5<<20
	const size = 15 << 20

	sum := sha256.New()
	if err := s.Put(t.Context(), "tmp/big", io.TeeReader(patterned(5, size), sum), size); err != nil {
		t.Fatal(err)
	}
	if err := s.Move(t.Context(), "tmp/big", "backups/big/big.tar.gz"); err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	io.WriteString(got, get(t, s, "backups/big/big.tar.gz"))
	if !bytes.Equal(got.Sum(nil), sum.Sum(nil)) {
		t.Fatal("moved object differs from the original")
	}
	wantList(t, s, "", "backups/big/big.tar.gz")
	info, err := srv.Client(t).StatObject(t.Context(), "move", "backups/big/big.tar.gz", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.ETag, "-3") {
		t.Fatalf("ETag %q does not show a 3-part copy", info.ETag)
	}
}

func TestS3CheckErrors(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "exists")
	if err := newS3(t, srv, S3Config{Name: "primary", Bucket: "exists"}).Check(t.Context()); err != nil {
		t.Fatalf("Check of a good location: %v", err)
	}
	closed := closedPortEndpoint(t)
	for _, tc := range []struct {
		name string
		c    S3Config
		want []string
	}{
		{"missing bucket", S3Config{Bucket: "no-such-bucket"},
			[]string{`s3 location "primary"`, `bucket "no-such-bucket" does not exist: create it or fix spec.s3.bucket`}},
		{"wrong secret key", S3Config{Bucket: "exists", SecretKey: "wrong"},
			[]string{`s3 location "primary"`, "access denied", "check the credentials Secret"}},
		{"unknown access key", S3Config{Bucket: "exists", AccessKey: "nobody"},
			[]string{"access denied", "check the credentials Secret"}},
		{"unreachable endpoint", S3Config{Bucket: "exists", Endpoint: closed},
			[]string{"endpoint " + closed + " unreachable", "connection refused"}},
		{"https to a plain HTTP server", S3Config{Bucket: "exists", Endpoint: strings.TrimPrefix(srv.Endpoint, "http://")},
			[]string{"answers plain HTTP: use an http:// endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name = "primary"
			start := time.Now()
			err := newS3(t, srv, tc.c).Check(t.Context())
			if err == nil {
				t.Fatal("Check succeeded")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check error %q does not say %q", err, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Check took %s; it should fail fast", d)
			}
		})
	}

	// Other operations explain the same way.
	bad := newS3(t, srv, S3Config{Bucket: "exists", SecretKey: "wrong"})
	if err := bad.Put(t.Context(), "x", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Put with a wrong secret = %v, want access denied", err)
	}
	missing := newS3(t, srv, S3Config{Bucket: "no-such-bucket"})
	if _, err := missing.List(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("List of a missing bucket = %v, want a missing-bucket error", err)
	}
}

// closedPortEndpoint is an http endpoint on 127.0.0.1 where nothing listens.
func closedPortEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestS3TLS(t *testing.T) {
	srv := s3server.StartTLS(t)
	srv.CreateBucket(t, "secure")
	s := newS3(t, srv, S3Config{Bucket: "secure", CABundle: srv.CACert})
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	put(t, s, "backups/a/a.tar.gz", "over TLS")
	if got := get(t, s, "backups/a/a.tar.gz"); got != "over TLS" {
		t.Fatalf("Get = %q", got)
	}

	// host:port means https.
	untrusted := newS3(t, srv, S3Config{Bucket: "secure", Endpoint: strings.TrimPrefix(srv.Endpoint, "https://")})
	err := untrusted.Check(t.Context())
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), "spec.s3.caBundle") {
		t.Fatalf("Check without the CA = %v, want a certificate error pointing at spec.s3.caBundle", err)
	}
}

func TestNewS3Errors(t *testing.T) {
	ok := S3Config{Bucket: "bucket", AccessKey: "a", SecretKey: "s"}
	for _, tc := range []struct {
		name   string
		change func(*S3Config)
		want   string
	}{
		{"no bucket", func(c *S3Config) { c.Bucket = "" }, "set spec.s3.bucket"},
		{"bad bucket", func(c *S3Config) { c.Bucket = "bad bucket" }, "not a valid bucket name"},
		{"bad scheme", func(c *S3Config) { c.Endpoint = "ftp://host" }, `scheme "ftp" is not supported`},
		{"endpoint with path", func(c *S3Config) { c.Endpoint = "https://host/bucket" }, "must be only scheme://host[:port]"},
		{"no secret", func(c *S3Config) { c.SecretKey = "" }, "check the credentials Secret"},
		{"small parts", func(c *S3Config) { c.PartSize = 1 << 20 }, "outside S3's limits"},
		{"bad CA bundle", func(c *S3Config) { c.CABundle = []byte("not PEM") }, "fix spec.s3.caBundle"},
		{"bad prefix", func(c *S3Config) { c.Prefix = "a/../b" }, "fix spec.s3.prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Name = "loc"
			tc.change(&c)
			_, err := NewS3(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `s3 location "loc": `) {
				t.Fatalf("NewS3 = %v, want an error about the location saying %q", err, tc.want)
			}
		})
	}
	for _, ep := range []string{"", "s3.example.com", "s3.example.com:9000", "https://s3.example.com", "http://127.0.0.1:9000/"} {
		c := ok
		c.Endpoint = ep
		if _, err := NewS3(c); err != nil {
			t.Errorf("NewS3 with endpoint %q: %v", ep, err)
		}
	}
}
