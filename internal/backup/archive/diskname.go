package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// Object names run to 253 bytes, so "<name>.json" can pass the 255-byte
// file name limit of common filesystems (and eCryptfs allows only 143).
// Extract stores such segments under a shortened name that keeps a prefix
// for people and a hash for uniqueness; the index keeps the real name.
const (
	maxSegmentBytes  = 140
	keptPrefixBytes  = 100
	segmentHashChars = 16
)

// diskPath is where an archive path is stored under the extract directory.
func diskPath(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		if len(s) > maxSegmentBytes {
			segs[i] = shortSegment(s)
		}
	}
	return strings.Join(segs, "/")
}

func shortSegment(s string) string {
	sum := sha256.Sum256([]byte(s))
	n := keptPrefixBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // never split a multi-byte character
	}
	ext := ""
	if strings.HasSuffix(s, itemExt) {
		ext = itemExt
	}
	return s[:n] + "~" + hex.EncodeToString(sum[:])[:segmentHashChars] + ext
}
