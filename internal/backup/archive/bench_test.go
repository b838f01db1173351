package archive

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var configMaps = schema.GroupResource{Resource: "configmaps"}

// kilobyteObject is a ConfigMap whose JSON is about 1 KB.
func kilobyteObject(i int) (string, string, map[string]any) {
	return fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("config-%06d", i), map[string]any{
		"data": map[string]any{"payload": strings.Repeat(fmt.Sprintf("%08x", i), 112)},
	}
}

func BenchmarkWrite(b *testing.B) {
	_, _, fields := kilobyteObject(0)
	size := len(fields["data"].(map[string]any)["payload"].(string))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	w, err := NewWriter(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		ns, name, fields := kilobyteObject(i)
		if err := w.Add(configMaps, "v1", true, object("v1", "ConfigMap", ns, name, fields)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// Writing streams: the heap holds names and paths, not the objects.
func TestWriterHeapStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap over 10,000 items")
	}
	const items = 10_000
	heapInuse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heapInuse()
	w, err := NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		ns, name, fields := kilobyteObject(i)
		if err := w.Add(configMaps, "v1", true, object("v1", "ConfigMap", ns, name, fields)); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInuse()
	runtime.KeepAlive(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// 10,000 items of 1 KB are 10 MB; holding them would blow the bound.
	const bound = 8 << 20
	if after > before && after-before > bound {
		t.Errorf("heap grew by %d bytes writing %d items of 1 KB, want under %d", after-before, items, bound)
	}
	t.Logf("heap growth: %d KiB for %d items", (int64(after)-int64(before))/1024, items)
}
