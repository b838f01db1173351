package store

import (
	"errors"
	"testing"
)

func TestCheckKey(t *testing.T) {
	for _, key := range []string{"a", "backups/n/n.tar.gz", "a.b", ".hidden", "a..b", "a/.x/b", "with space"} {
		if err := checkKey(key); err != nil {
			t.Errorf("checkKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{"", "/abs", "../x", "a/../b", "..", ".", "./a", "a/.", "a//b", "a/", tmpPrefix + "x", "a/" + tmpPrefix, "a\x00b"} {
		if err := checkKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"", "backups/", "backups", "backups/a", "a/b/"} {
		if err := checkPrefix(p); err != nil {
			t.Errorf("checkPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "../", "a//", "a//b/", "a/../"} {
		if err := checkPrefix(p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkPrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}
