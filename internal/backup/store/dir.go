package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// Dir is a Store in a local directory (the hub's data dir). Files are
// accessed through an os.Root, so no key, symlink included, reaches outside
// the directory.
type Dir struct {
	path string
	root *os.Root
}

// NewDir opens root as a Store, creating it if needed. Archives hold cluster
// Secrets, so everything it creates is readable by the owner only.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("backup dir: no path given")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("backup dir %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("backup dir %s: cannot create it: %w", abs, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("backup dir %s: cannot open it: %w", abs, err)
	}
	return &Dir{path: abs, root: r}, nil
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// Close releases the directory; the Dir is unusable afterwards.
func (d *Dir) Close() error { return d.root.Close() }

// Get opens key.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, d.errorf("get", key, err)
	}
	f, err := d.root.Open(key)
	if err != nil {
		return nil, d.errorf("get", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, d.errorf("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, d.errorf("get", key, ErrNotFound)
	}
	return f, nil
}

// Stat returns the size of key.
func (d *Dir) Stat(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, d.errorf("stat", key, err)
	}
	fi, err := d.root.Stat(key)
	if err != nil {
		return 0, d.errorf("stat", key, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return 0, d.errorf("stat", key, ErrNotFound)
	}
	return fi.Size(), nil
}

// Delete removes key and then the folders it leaves empty.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return d.errorf("delete", key, err)
	}
	fi, err := d.root.Lstat(key)
	if err != nil {
		if errors.Is(notFound(err), ErrNotFound) {
			return nil
		}
		return d.errorf("delete", key, err)
	}
	if fi.IsDir() {
		// A folder is not an object, so there is nothing to delete.
		return nil
	}
	if err := d.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.errorf("delete", key, err)
	}
	d.removeEmptyDirs(path.Dir(key))
	return nil
}

// Check verifies that the directory exists and takes new files.
func (d *Dir) Check(ctx context.Context) error {
	f, name, err := d.createTemp(".")
	if err != nil {
		return fmt.Errorf("backup dir %s is not writable: %w: fix its permissions or free space", d.path, err)
	}
	f.Close()
	d.root.Remove(name)
	return nil
}

// removeEmptyDirs removes dir and its parents while they are empty, so
// deleted backups leave no folders behind. Remove fails on a folder that
// still holds something, which ends the climb.
func (d *Dir) removeEmptyDirs(dir string) {
	for dir != "." && dir != "/" {
		if d.root.Remove(dir) != nil {
			return
		}
		dir = path.Dir(dir)
	}
}

func (d *Dir) errorf(op, key string, err error) error {
	return fmt.Errorf("backup dir %s: %s %q: %w", d.path, op, key, err)
}

// notFound turns "no such file" and "a parent is a file" into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotFound
	}
	return err
}
