package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxVersionBytes bounds metadata/version, which holds a few characters.
const maxVersionBytes = 1 << 10

// Extract unpacks the archive read from r into dir and returns an index of
// the objects it holds. dir must not exist or be empty; Extract creates it.
//
// The archive is treated as untrusted: Extract refuses input that is not
// gzip, is truncated or corrupt, lacks metadata/version or has a major
// version other than 1, has entries that are not regular files or
// directories (links, devices), names paths outside dir, or exceeds limits.
// On any refusal it removes what it wrote, so dir is left as it found it.
func Extract(r io.Reader, dir string, limits Limits) (*Contents, error) {
	limits, err := limits.withDefaults()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("extract directory %s: %w", dir, err)
	}
	created, err := prepareDir(abs)
	if err != nil {
		return nil, err
	}
	c, err := extract(r, abs, limits)
	if err != nil {
		discard(abs, created)
		return nil, err
	}
	return c, nil
}

func extract(r io.Reader, dir string, limits Limits) (*Contents, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return nil, notGzip(magic)
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		return nil, corrupt(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open extract directory %s: %w", dir, err)
	}
	defer root.Close()

	ix := newIndexer()
	version := ""
	tr := tar.NewReader(gz)
	for entries := 1; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, corrupt(err)
		}
		if entries > limits.MaxItems {
			return nil, fmt.Errorf("archive has more than %d entries; if it is trusted, raise Limits.MaxItems", limits.MaxItems)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue // PAX defaults for later entries; the reader applies them
		case tar.TypeDir:
			if err := root.MkdirAll(filepath.FromSlash(diskPath(name)), 0o700); err != nil {
				return nil, diskError(name, dir, err)
			}
			continue
		case tar.TypeReg:
			if name == "." {
				return nil, fmt.Errorf("archive entry %q is a file named like the extract directory itself; the archive is corrupt", hdr.Name)
			}
		default:
			return nil, fmt.Errorf("archive entry %q is a %s, not a regular file; Velero archives hold only files, so this archive is refused", hdr.Name, entryKind(hdr.Typeflag))
		}
		if hdr.Size > limits.MaxItemBytes {
			return nil, fmt.Errorf("archive entry %q is %d bytes, over the %d-byte limit; if the archive is trusted, raise Limits.MaxItemBytes", hdr.Name, hdr.Size, limits.MaxItemBytes)
		}
		body := io.Reader(tr)
		if name == versionFile {
			if version, err = readVersion(tr, hdr.Size); err != nil {
				return nil, err
			}
			body = strings.NewReader(version)
		}
		onDisk := diskPath(name)
		if err := writeEntry(root, name, onDisk, body); err != nil {
			return nil, err
		}
		if err := ix.add(name, onDisk); err != nil {
			return nil, err
		}
	}
	// tar stops at its end marker; gzip checks its length and CRC only at
	// the end of the stream, so read on to catch corruption there too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, corrupt(err)
	}
	if version == "" {
		return nil, fmt.Errorf("not a Velero-format backup archive: it has no %s file; check that it is a Velero backup's .tar.gz and not another tarball", versionFile)
	}
	return ix.contents(dir, strings.TrimSpace(version)), nil
}

// readVersion reads and checks metadata/version; it comes first in archives
// Velero writes, so an unsupported one is refused before anything else.
func readVersion(r io.Reader, size int64) (string, error) {
	if size > maxVersionBytes {
		return "", fmt.Errorf("not a Velero-format backup archive: %s is %d bytes, far more than a version number", versionFile, size)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return "", corrupt(err)
	}
	if _, err := checkVersion(string(raw)); err != nil {
		return "", err
	}
	return string(raw), nil
}

// writeEntry copies the archive's file name into root at onDisk; root keeps
// every write inside the extract directory.
func writeEntry(root *os.Root, name, onDisk string, body io.Reader) error {
	osName := filepath.FromSlash(onDisk)
	if err := root.MkdirAll(filepath.Dir(osName), 0o700); err != nil {
		return diskError(name, root.Name(), err)
	}
	f, err := root.OpenFile(osName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("archive holds %q twice; it is corrupt or was not written by Velero", name)
	}
	if err != nil {
		return diskError(name, root.Name(), err)
	}
	dst := &fileWriter{f: f}
	_, err = io.Copy(dst, body)
	cerr := f.Close()
	switch {
	case dst.err != nil:
		return diskError(name, root.Name(), dst.err)
	case err != nil:
		return corrupt(err)
	case cerr != nil:
		return diskError(name, root.Name(), cerr)
	}
	return nil
}

// fileWriter remembers write failures, so that a failing copy can be blamed
// on the disk or on the archive.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
