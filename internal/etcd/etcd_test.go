package etcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"

	"flotilla.dev/flotilla/internal/datadir"
)

// After history is compacted away, the member rewrites its database file to
// the size of the live data.
func TestDefragmentShrinksAFileMostlyFree(t *testing.T) {
	dir, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	client, err := dir.Port("client", 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := dir.Port("peer", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Name: "t", DataDir: filepath.Join(dir.Path, "etcd"),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", client), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", peer)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if done, err := m.defragmentIfMostlyFree(); done || err != nil {
		t.Fatalf("defragmented an empty database: %v", err)
	}

	cli := v3client.New(m.e.Server)
	defer cli.Close()
	value := strings.Repeat("x", 64<<10)
	var rev int64
	for i := range 600 { // 600 revisions of 10 keys: about 38 MB of history
		resp, err := cli.Put(ctx, fmt.Sprintf("/k%d", i%10), value)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir.Path, "etcd", "member", "snap", "db")
	before := fileSize(t, path)
	done, err := m.defragmentIfMostlyFree()
	if err != nil || !done {
		t.Fatalf("did not defragment a %d MB file holding about 1 MB of live data: %v", before>>20, err)
	}
	if after := fileSize(t, path); after > before/4 {
		t.Errorf("database file %d MB → %d MB, want a quarter or less", before>>20, after>>20)
	}
	if got, err := cli.Get(ctx, "/k3"); err != nil || len(got.Kvs) != 1 || len(got.Kvs[0].Value) != len(value) {
		t.Errorf("live data after defragmenting: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
