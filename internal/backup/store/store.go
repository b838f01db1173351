package store

import (
	"context"
	"errors"
	"io"
)

// Store holds objects by key.
type Store interface {
	// Put stores r under key; size is -1 when unknown. The object appears
	// under key only once complete (an interrupted Put leaves nothing under
	// key, and an object already there stays as it was).
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key; a missing key gives an error for which
	// errors.Is(err, ErrNotFound) holds.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns the size of key, or ErrNotFound when it is missing.
	Stat(ctx context.Context, key string) (int64, error)
	// List returns every key that starts with prefix (recursive), sorted.
	// Like S3, prefix is a string prefix: "backups/a" matches both
	// "backups/a/x" and "backups/ab/x"; end it with "/" to list one folder.
	List(ctx context.Context, prefix string) ([]string, error)
	// Move renames from to to, replacing to; ErrNotFound when from is
	// missing.
	Move(ctx context.Context, from, to string) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Check verifies the store is reachable and usable, with an error that
	// says what to fix.
	Check(ctx context.Context) error
}

// ErrNotFound is wrapped by errors for keys that do not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalidKey is wrapped by errors for keys or prefixes that are not
// relative slash-separated paths.
var ErrInvalidKey = errors.New("invalid key")

var (
	_ Store = (*Dir)(nil)
	_ Store = (*S3)(nil)
)
