package store

import (
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// testStore runs the behaviour every Store must have. open returns an empty
// store; each subtest gets its own.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		put(t, s, "backups/a/a.tar.gz", "archive a")
		if got := get(t, s, "backups/a/a.tar.gz"); got != "archive a" {
			t.Fatalf("Get = %q, want %q", got, "archive a")
		}
		if n, err := s.Stat(ctx, "backups/a/a.tar.gz"); err != nil || n != int64(len("archive a")) {
			t.Fatalf("Stat = %d, %v; want %d, nil", n, err, len("archive a"))
		}
		// Overwrite; size unknown.
		if err := s.Put(ctx, "backups/a/a.tar.gz", strings.NewReader("archive a, v2"), -1); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "backups/a/a.tar.gz"); got != "archive a, v2" {
			t.Fatalf("Get after overwrite = %q", got)
		}
		if err := s.Move(ctx, "backups/a/a.tar.gz", "backups/b/b.tar.gz"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "backups/b/b.tar.gz"); got != "archive a, v2" {
			t.Fatalf("Get after Move = %q", got)
		}
		if _, err := s.Stat(ctx, "backups/a/a.tar.gz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Stat of moved-away key = %v, want ErrNotFound", err)
		}
		// Move replaces an existing object.
		put(t, s, "backups/c/c.tar.gz", "archive c")
		if err := s.Move(ctx, "backups/c/c.tar.gz", "backups/b/b.tar.gz"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "backups/b/b.tar.gz"); got != "archive c" {
			t.Fatalf("Get after replacing Move = %q", got)
		}
		wantList(t, s, "", "backups/b/b.tar.gz")
		if err := s.Delete(ctx, "backups/b/b.tar.gz"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "backups/b/b.tar.gz"); err != nil {
			t.Fatalf("Delete of a missing key = %v, want nil", err)
		}
		wantList(t, s, "")
	})

	t.Run("EmptyObject", func(t *testing.T) {
		s := open(t)
		put(t, s, "empty", "")
		if n, err := s.Stat(t.Context(), "empty"); err != nil || n != 0 {
			t.Fatalf("Stat = %d, %v; want 0, nil", n, err)
		}
		if got := get(t, s, "empty"); got != "" {
			t.Fatalf("Get = %q, want empty", got)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		put(t, s, "backups/x/x.tar.gz", "x")
		for _, key := range []string{"missing", "backups/x", "backups/x/x.tar.gz/y"} {
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%q) = %v, want ErrNotFound", key, err)
			}
			if err := s.Move(ctx, key, "elsewhere"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Move(%q) = %v, want ErrNotFound", key, err)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Errorf("Delete(%q) = %v, want nil", key, err)
			}
		}
		if err := s.Move(ctx, "backups/x/x.tar.gz", "backups/x/x.tar.gz"); err != nil {
			t.Errorf("Move onto itself = %v, want nil", err)
		}
		wantList(t, s, "", "backups/x/x.tar.gz")
	})

	t.Run("ListPrefix", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{
			"restores/r/r.tar.gz",
			"backups/ab/ab.tar.gz",
			"backups/a/a.tar.gz",
			"backups/a/a-logs.gz",
			"backups.txt",
			"x/a/b",
			"x/a.txt",
		} {
			put(t, s, k, k)
		}
		// Byte order: '.' < '/' < letters.
		wantList(t, s, "", "backups.txt", "backups/a/a-logs.gz", "backups/a/a.tar.gz",
			"backups/ab/ab.tar.gz", "restores/r/r.tar.gz", "x/a.txt", "x/a/b")
		wantList(t, s, "backups/a", "backups/a/a-logs.gz", "backups/a/a.tar.gz", "backups/ab/ab.tar.gz")
		wantList(t, s, "backups/a/", "backups/a/a-logs.gz", "backups/a/a.tar.gz")
		wantList(t, s, "backups", "backups.txt", "backups/a/a-logs.gz", "backups/a/a.tar.gz", "backups/ab/ab.tar.gz")
		wantList(t, s, "backups/a/a.tar.gz", "backups/a/a.tar.gz")
		wantList(t, s, "x/", "x/a.txt", "x/a/b")
		wantList(t, s, "nothing/")
		wantList(t, s, "backups/zzz")
	})

	t.Run("InterruptedPut", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		put(t, s, "backups/old/old.tar.gz", "old archive")
		for _, tc := range []struct {
			name string
			key  string
			size int64
		}{
			{"unknown size", "backups/new/new.tar.gz", -1},
			{"known size", "backups/new/new.tar.gz", 64 << 10},
			{"unknown size over an existing object", "backups/old/old.tar.gz", -1},
			{"known size over an existing object", "backups/old/old.tar.gz", 64 << 10},
		} {
			err := s.Put(ctx, tc.key, &failingReader{r: patterned(1, 64<<10), after: 16 << 10}, tc.size)
			if err == nil {
				t.Fatalf("%s: Put with a failing reader succeeded", tc.name)
			}
			if !errors.Is(err, errReader) {
				t.Errorf("%s: Put error %q does not wrap the reader's error", tc.name, err)
			}
		}
		if _, err := s.Stat(ctx, "backups/new/new.tar.gz"); !errors.Is(err, ErrNotFound) {
			t.Errorf("interrupted Put left an object: Stat = %v", err)
		}
		if got := get(t, s, "backups/old/old.tar.gz"); got != "old archive" {
			t.Errorf("interrupted overwrite changed the object to %d bytes", len(got))
		}
		wantList(t, s, "", "backups/old/old.tar.gz")
	})

	t.Run("SizeMismatch", func(t *testing.T) {
		s := open(t)
		if err := s.Put(t.Context(), "short", strings.NewReader("abc"), 10); err == nil {
			t.Fatal("Put of 3 bytes declared as 10 succeeded")
		}
		if _, err := s.Stat(t.Context(), "short"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat after a short Put = %v, want ErrNotFound", err)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		for _, key := range []string{"../x", "/etc/passwd", "a//b", "a/../../b", "a/", ""} {
			if err := s.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Move(ctx, "a", key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Move to %q = %v, want ErrInvalidKey", key, err)
			}
		}
		if _, err := s.List(ctx, "../"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("List(../) = %v, want ErrInvalidKey", err)
		}
		wantList(t, s, "")
	})

	t.Run("Check", func(t *testing.T) {
		if err := open(t).Check(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func put(t *testing.T, s Store, key, data string) {
	t.Helper()
	if err := s.Put(t.Context(), key, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s Store, key string) string {
	t.Helper()
	r, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return string(b)
}

func wantList(t *testing.T, s Store, prefix string, want ...string) {
	t.Helper()
	got, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

var errReader = errors.New("reader broke half-way")

// failingReader returns errReader once after bytes have been read.
type failingReader struct {
	r     io.Reader
	after int64
	n     int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errReader
	}
	p = p[:min(int64(len(p)), f.after-f.n)]
	n, err := f.r.Read(p)
	f.n += int64(n)
	return n, err
}

// patterned returns n reproducible pseudo-random bytes that differ per seed,
// hiding any interface but io.Reader so stores cannot learn the size.
func patterned(seed byte, n int64) io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)}
}
