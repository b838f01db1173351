package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// Put writes r to a temporary file beside key, syncs it and renames it over
// key, so key holds either the old object or the whole new one.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := checkKey(key); err != nil {
		return d.errorf("put", key, err)
	}
	dir := path.Dir(key)
	f, tmp, err := d.createTemp(dir)
	if err != nil {
		return d.errorf("put", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return d.errorf("put", key, err)
	}
	if size >= 0 && n != size {
		return d.errorf("put", key, fmt.Errorf("got %d bytes, expected %d", n, size))
	}
	if err := f.Sync(); err != nil {
		return d.errorf("put", key, err)
	}
	if err := f.Close(); err != nil {
		return d.errorf("put", key, err)
	}
	if err := d.root.Rename(tmp, key); err != nil {
		return d.errorf("put", key, err)
	}
	return d.syncDir(dir)
}

// Move renames from to to, replacing to.
func (d *Dir) Move(ctx context.Context, from, to string) error {
	if err := checkKey(from); err != nil {
		return d.errorf("move", from, err)
	}
	if err := checkKey(to); err != nil {
		return d.errorf("move", to, err)
	}
	fi, err := d.root.Stat(from)
	if err != nil {
		return d.errorf("move", from, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return d.errorf("move", from, ErrNotFound)
	}
	if from == to {
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := d.root.MkdirAll(path.Dir(to), 0o700)
		if err == nil {
			err = d.root.Rename(from, to)
		}
		if err == nil {
			break
		}
		if !folderRace(err) || attempt == 9 {
			return d.errorf("move", from, notFound(err))
		}
	}
	if err := d.syncDir(path.Dir(to)); err != nil {
		return err
	}
	if err := d.syncDir(path.Dir(from)); err != nil {
		return err
	}
	d.removeEmptyDirs(path.Dir(from))
	return nil
}

// createTemp creates a new file in dir (made if missing) whose name List
// skips and no key can take.
func (d *Dir) createTemp(dir string) (*os.File, string, error) {
	for attempt := 0; ; attempt++ {
		var b [8]byte
		rand.Read(b[:])
		name := path.Join(dir, tmpPrefix+hex.EncodeToString(b[:]))
		err := d.root.MkdirAll(dir, 0o700)
		if err == nil {
			var f *os.File
			if f, err = d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
				return f, name, nil
			}
		}
		if !folderRace(err) || attempt == 9 {
			return nil, "", err
		}
	}
}

// folderRace tells whether err may come from a concurrent Delete removing a
// folder it emptied while MkdirAll creates it or a file goes into it; doing
// the same again then succeeds.
func folderRace(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)
}

// syncDir makes a rename in dir durable. A dir that a concurrent Delete
// already removed has nothing left to sync.
func (d *Dir) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup dir %s: sync %q: %w", d.path, dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup dir %s: sync %q: %w", d.path, dir, err)
	}
	return nil
}

// ctxReader stops a copy between reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
