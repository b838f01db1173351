package store

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
)

// Check lists the location, which proves that the endpoint answers, the
// bucket exists and the credentials may read it. A listing's error names the
// cause (NoSuchBucket, SignatureDoesNotMatch, ...), where a HEAD of the
// bucket gets only a status. It does not retry, so an unreachable endpoint is
// reported at once.
func (s *S3) Check(ctx context.Context) error {
	// Cancelling stops minio's lister after the first page.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.probe.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		if obj.Err != nil {
			return fmt.Errorf("s3 location %q: %w", s.name, s.explain(obj.Err))
		}
		break
	}
	return nil
}
