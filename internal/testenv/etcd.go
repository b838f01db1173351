package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/flotilla/internal/datadir"
)

// EtcdCluster starts an etcd cluster of n members under dir (flotilla etcd,
// each its own process), stopped when the test ends. It returns the members
// and their client URLs.
func EtcdCluster(t testing.TB, dir string, n int) ([]*Process, []string) {
	t.Helper()
	type member struct{ name, client, peer string }
	var members []member
	var initial []string
	for i := 1; i <= n; i++ {
		cp, err := datadir.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		pp, err := datadir.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		m := member{fmt.Sprintf("m%d", i), fmt.Sprintf("http://127.0.0.1:%d", cp), fmt.Sprintf("http://127.0.0.1:%d", pp)}
		members = append(members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	var procs []*Process
	var clients []string
	for _, m := range members {
		d := filepath.Join(dir, m.name)
		p := NewProcess("etcd-"+m.name, d, "", "etcd", "--name", m.name, "--data-dir", d,
			"--listen-client-url", m.client, "--listen-peer-url", m.peer, "--initial-cluster", strings.Join(initial, ","))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		procs = append(procs, p)
		clients = append(clients, m.client)
	}
	return procs, clients
}
