package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Put uploads r. Objects larger than a part, and all of unknown size, go up
// as multipart uploads one part at a time, so memory stays at one part; the
// server shows the object only on completion, and a failed upload is
// aborted.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return s.fail("put", key, err)
	}
	src := &readErr{r: r}
	_, err := s.client.PutObject(ctx, s.bucket, s.full(key), src, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    s.partSize,
		NumThreads:  1,
	})
	if src.err != nil {
		// The client may report the reader's failure as a request error;
		// blame the reader, not the endpoint.
		return fmt.Errorf("s3 location %q: put %q: reading the data: %w", s.name, key, src.err)
	}
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// readErr remembers the first error other than io.EOF that r returned.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Get opens key, asking the server right away so a missing key is reported
// here rather than on the first Read.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, s.fail("get", key, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.full(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.fail("get", key, err)
	}
	return obj, nil
}

// Stat returns the size of key.
func (s *S3) Stat(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, s.fail("stat", key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.full(key), minio.StatObjectOptions{})
	if err != nil {
		return 0, s.fail("stat", key, err)
	}
	return info.Size, nil
}

// List returns the keys under prefix. Objects whose names are not valid keys
// (such as folder markers ending in "/") are skipped.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, s.fail("list", prefix, err)
	}
	// Cancelling stops minio's lister goroutine if we return early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := []string{}
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.full(prefix), Recursive: true}) {
		if obj.Err != nil {
			return nil, s.fail("list", prefix, obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if ok && checkKey(key) == nil {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Move copies from to to on the server, then deletes from. If the delete
// fails, both exist and a retried Move finishes the job.
func (s *S3) Move(ctx context.Context, from, to string) error {
	if err := checkKey(from); err != nil {
		return s.fail("move", from, err)
	}
	if err := checkKey(to); err != nil {
		return s.fail("move", to, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.full(from), minio.StatObjectOptions{})
	if err != nil {
		return s.fail("move", from, err)
	}
	if from == to {
		return nil
	}
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: s.full(to)}
	// MatchETag: copy the object we just looked at, not a newer one.
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: s.full(from), MatchETag: info.ETag}
	if info.Size <= s.copyLimit {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		// One CopyObject stops at 5 GiB; ComposeObject copies in parts.
		dst.PartSize = s.copyPartSize
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return fmt.Errorf("s3 location %q: move %q to %q: copy: %w", s.name, from, to, s.explain(err))
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.full(from), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3 location %q: move %q to %q: copied, but could not delete the original (move again to finish): %w", s.name, from, to, s.explain(err))
	}
	return nil
}

// Delete removes key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.full(key), minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s.explain(err), ErrNotFound) {
		return s.fail("delete", key, err)
	}
	return nil
}
