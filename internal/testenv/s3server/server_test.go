package s3server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartCreateBucket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Server
	}{{"http", Start}, {"https", StartTLS}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			s.CreateBucket(t, "bucket-one")
			ok, err := s.Client(t).BucketExists(t.Context(), "bucket-one")
			if err != nil || !ok {
				t.Fatalf("BucketExists = %v, %v; want true, nil", ok, err)
			}
			// The POSIX backend keeps each bucket as a folder in Dir.
			if fi, err := os.Stat(filepath.Join(s.Dir, "bucket-one")); err != nil || !fi.IsDir() {
				t.Fatalf("bucket folder: %v", err)
			}
		})
	}
}
