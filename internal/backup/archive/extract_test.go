package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validArchive is big enough that cutting it in half lands inside the data.
func validArchive(t *testing.T) []byte {
	data, _ := writeArchive(t, roundTripItems())
	return data
}

func TestExtractRefusals(t *testing.T) {
	version := entry{name: "metadata/version", body: "1.1.0\n"}
	item := entry{name: "resources/configmaps/namespaces/ns/a.json", body: configJSON}
	corruptCRC := func() []byte {
		data := bytes.Clone(validArchive(t))
		data[len(data)-8] ^= 0xff // first byte of the gzip trailer's CRC-32
		return data
	}
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		want   []string
	}{
		{"not gzip", []byte("PK\x03\x04 this is a zip file"), Limits{}, []string{"not a gzip archive", "50 4b"}},
		{"empty input", nil, Limits{}, []string{"not a gzip archive", "empty"}},
		{"truncated", func() []byte { d := validArchive(t); return d[:len(d)/2] }(), Limits{}, []string{"archive is truncated or corrupt"}},
		{"bad checksum", corruptCRC(), Limits{}, []string{"archive is truncated or corrupt", "checksum"}},
		{"gzip but not tar", func() []byte {
			var b bytes.Buffer
			gzipBytes(t, &b, bytes.Repeat([]byte("not a tar header "), 64))
			return b.Bytes()
		}(), Limits{}, []string{"archive is truncated or corrupt"}},
		{"no metadata/version", tarGz(t, item), Limits{}, []string{"not a Velero-format backup archive", "no metadata/version"}},
		{"major version 2", tarGz(t, entry{name: "metadata/version", body: "2.0.0\n"}, item), Limits{}, []string{"not a Velero-format backup archive", "2.0.0", "1.x"}},
		{"version not a number", tarGz(t, entry{name: "metadata/version", body: "latest"}, item), Limits{}, []string{"not a Velero-format backup archive", "not a version number"}},
		{"dot-dot path", tarGz(t, version, entry{name: "resources/../../escaped.json", body: "{}"}), Limits{}, []string{"points outside the extract directory"}},
		{"absolute path", tarGz(t, version, entry{name: "/tmp/escaped.json", body: "{}"}), Limits{}, []string{"points outside the extract directory"}},
		{"symlink", tarGz(t, version, entry{name: "resources/configmaps", typ: tar.TypeSymlink, link: "/etc"}), Limits{}, []string{"is a symlink", "refused"}},
		{"hard link", tarGz(t, version, entry{name: "resources/x.json", typ: tar.TypeLink, link: "metadata/version"}), Limits{}, []string{"is a hard link"}},
		{"device", tarGz(t, version, entry{name: "resources/null", typ: tar.TypeChar}), Limits{}, []string{"is a device"}},
		{"item over the limit", tarGz(t, version, entry{name: item.name, body: strings.Repeat("x", 1000)}), Limits{MaxItemBytes: 100}, []string{"1000 bytes, over the 100-byte limit", "Limits.MaxItemBytes"}},
		{"too many entries", tarGz(t, version, item, entry{name: "resources/configmaps/namespaces/ns/b.json", body: "{}"}), Limits{MaxItems: 2}, []string{"more than 2 entries", "Limits.MaxItems"}},
		{"duplicate entry", tarGz(t, version, item, item), Limits{}, []string{"twice"}},
		{"two preferred versions", tarGz(t, version,
			entry{name: "resources/widgets.example.com/v1-preferredversion/cluster/a.json", body: "{}"},
			entry{name: "resources/widgets.example.com/v2-preferredversion/cluster/b.json", body: "{}"},
		), Limits{}, []string{"both v1 and v2 as the preferred version"}},
		{"negative limit", validArchive(t), Limits{MaxItems: -1}, []string{"must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "extract")
			c, err := Extract(bytes.NewReader(tt.data), dir, tt.limits)
			if err == nil {
				t.Fatalf("Extract succeeded with %d resources, want an error", len(c.Resources))
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			// Nothing stays behind: not in dir, which Extract made, and
			// nothing beside it.
			left, _ := os.ReadDir(parent)
			for _, e := range left {
				t.Errorf("%s left behind in the parent of the extract directory", e.Name())
			}
			if _, err := os.Stat("/tmp/escaped.json"); err == nil {
				t.Errorf("/tmp/escaped.json exists")
			}
		})
	}
}

func TestExtractNeedsEmptyDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Extract(bytes.NewReader(validArchive(t)), dir, Limits{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Extract into a non-empty dir: error = %v, want 'not empty'", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("existing file disturbed: %v", err)
	}
}

// An existing empty directory is emptied again on failure but kept.
func TestExtractCleansExistingDirOnFailure(t *testing.T) {
	dir := t.TempDir()
	data := tarGz(t,
		entry{name: "metadata/version", body: "1.1.0"},
		entry{name: "resources/configmaps/namespaces/ns/a.json", body: configJSON},
		entry{name: "resources/configmaps/namespaces/ns/b.json", typ: tar.TypeSymlink, link: "a.json"},
	)
	if _, err := Extract(bytes.NewReader(data), dir, Limits{}); err == nil {
		t.Fatal("Extract succeeded, want a symlink refusal")
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Extract removed a directory it did not create")
	}
	if len(entries) != 0 {
		t.Errorf("Extract left %d entries after failing", len(entries))
	}
}
