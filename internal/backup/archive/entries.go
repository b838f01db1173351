package archive

import (
	"archive/tar"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// entryName cleans an entry's name and refuses any that could land outside
// the extract directory; "." is the directory itself. ".." is refused even
// where it would resolve inside: Velero never writes it, so it only appears
// in crafted archives.
func entryName(raw string) (string, error) {
	unsafe := raw == "" || strings.ContainsRune(raw, 0) || path.IsAbs(raw) || strings.HasPrefix(raw, `\`)
	for seg := range strings.SplitSeq(raw, "/") {
		unsafe = unsafe || seg == ".."
	}
	name := path.Clean(raw)
	if unsafe || name != "." && !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("archive entry %q points outside the extract directory; the archive is unsafe and was refused", raw)
	}
	return name, nil
}

func entryKind(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("entry of type %q", t)
}
