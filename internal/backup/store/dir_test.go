package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newDir(t, t.TempDir()) })
}

func newDir(t *testing.T, root string) *Dir {
	t.Helper()
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDirRefusesPathsOutside(t *testing.T) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDir(t, filepath.Join(parent, "store"))
	ctx := t.Context()

	err := d.Put(ctx, "../x", strings.NewReader("x"), 1)
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), `"../x"`) {
		t.Fatalf("Put(../x) = %v, want ErrInvalidKey naming the key", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Put(../x) wrote outside the dir: %v", err)
	}

	// A symlink inside the dir that points out of it is not followed.
	if err := os.Symlink(outside, filepath.Join(d.Path(), "link")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "link/x", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put through a symlink out of the dir succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Put wrote through the symlink: %v", err)
	}
	if _, err := d.Get(ctx, "link/secret"); err == nil {
		t.Fatal("Get through a symlink out of the dir succeeded")
	}
	if err := d.Move(ctx, "link/secret", "stolen"); err == nil {
		t.Fatal("Move through a symlink out of the dir succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatalf("file outside the dir is gone: %v", err)
	}
}

func TestDirLeavesNoTempFiles(t *testing.T) {
	d := newDir(t, t.TempDir())
	ctx := t.Context()
	put(t, d, "backups/a/a.tar.gz", "a")
	if err := d.Put(ctx, "backups/b/b.tar.gz", &failingReader{r: patterned(2, 1<<20), after: 1000}, -1); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	// A file left by a crash mid-Put is not listed.
	crash := filepath.Join(d.Path(), "backups", "a", tmpPrefix+"crashed")
	if err := os.WriteFile(crash, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantList(t, d, "", "backups/a/a.tar.gz")
	os.Remove(crash)

	var temps []string
	filepath.WalkDir(d.Path(), func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), tmpPrefix) {
			temps = append(temps, p)
		}
		return nil
	})
	if len(temps) != 0 {
		t.Fatalf("temporary files left behind: %q", temps)
	}
}

func TestDirPermissionsAndCleanup(t *testing.T) {
	d := newDir(t, filepath.Join(t.TempDir(), "new", "store"))
	put(t, d, "backups/a/a.tar.gz", "a")
	for p, want := range map[string]fs.FileMode{
		d.Path():                                0o700,
		filepath.Join(d.Path(), "backups", "a"): 0o700,
		filepath.Join(d.Path(), "backups/a/a.tar.gz"): 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v (archives hold Secrets)", p, got, want)
		}
	}
	// Deleting the last object of a backup removes its folders.
	if err := d.Delete(t.Context(), "backups/a/a.tar.gz"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "backups")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folders left after Delete: %v", err)
	}
	if _, err := os.Stat(d.Path()); err != nil {
		t.Errorf("Delete removed the store's own dir: %v", err)
	}
}

func TestNewDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDir(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("NewDir(a file) = %v, want an error naming it", err)
	}
	if _, err := NewDir(""); err == nil {
		t.Fatal(`NewDir("") succeeded`)
	}
}

// Delete removes folders it empties while other Puts and Moves create files
// in them; none of those may fail for it.
func TestDirConcurrentPutDelete(t *testing.T) {
	d := newDir(t, t.TempDir())
	ctx := t.Context()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			key := fmt.Sprintf("backups/shared/%d.tar.gz", g)
			moved := fmt.Sprintf("backups/shared/moved/%d.tar.gz", g)
			for range 100 {
				if err := d.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
					errs <- err
					return
				}
				if err := d.Move(ctx, key, moved); err != nil {
					errs <- err
					return
				}
				if err := d.Delete(ctx, moved); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wantList(t, d, "")
}
