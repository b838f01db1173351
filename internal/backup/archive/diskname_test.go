package archive

import (
	"strings"
	"testing"
)

func TestDiskPath(t *testing.T) {
	short := "resources/configmaps/namespaces/ns/settings.json"
	if got := diskPath(short); got != short {
		t.Errorf("diskPath(%q) = %q, want it unchanged", short, got)
	}
	a := "resources/configmaps/namespaces/ns/" + strings.Repeat("x", 200) + "-a.json"
	b := "resources/configmaps/namespaces/ns/" + strings.Repeat("x", 200) + "-b.json"
	da, db := diskPath(a), diskPath(b)
	if da == db {
		t.Errorf("two long names share the disk path %s", da)
	}
	for _, d := range []string{da, db} {
		last := d[strings.LastIndex(d, "/")+1:]
		if len(last) > maxSegmentBytes || !strings.HasSuffix(last, ".json") || !strings.HasPrefix(d, "resources/configmaps/namespaces/ns/xxx") {
			t.Errorf("diskPath = %s, want a short .json name under the same directory", d)
		}
	}
	if diskPath(a) != da {
		t.Error("diskPath is not deterministic")
	}
	// A multi-byte character straddling the cut is kept whole.
	u := "a" + strings.Repeat("é", 100) + ".json"
	if got := diskPath(u); !strings.HasPrefix(got, "a"+strings.Repeat("é", 49)+"~") {
		t.Errorf("diskPath split a character: %q", got)
	}
}
