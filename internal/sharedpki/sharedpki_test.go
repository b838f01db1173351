package sharedpki_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/etcd"
	"flotilla.dev/flotilla/internal/kubeapi"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/sharedpki"
)

func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	cp, _ := datadir.FreePort()
	pp, _ := datadir.FreePort()
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", cp)
	m, err := etcd.Start(context.Background(), etcd.Config{Name: "t", DataDir: filepath.Join(dir, "etcd"), ClientURL: client,
		PeerURL: fmt.Sprintf("http://127.0.0.1:%d", pp), LogFile: filepath.Join(dir, "etcd.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func create(dir string) func() error {
	return func() error {
		if err := kubeapi.CreatePKI(dir); err != nil {
			return err
		}
		_, err := pki.LoadOrCreateCA(dir, "heartbeat-ca", "flotilla-heartbeat-ca")
		return err
	}
}

// Hubs starting at once on one etcd end up with one set of authorities, and
// a hub that had its own takes the shared ones: its leaves are reissued.
func TestHubsOnOneEtcdShareTheirAuthorities(t *testing.T) {
	cli := startEtcd(t)
	ctx := context.Background()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var wg sync.WaitGroup
	errs := make([]error, len(dirs))
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sharedpki.Sync(ctx, cli, d, create(d))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hub %d: %v", i, err)
		}
	}
	for _, name := range sharedpki.Files {
		first, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs[1:] {
			if b, _ := os.ReadFile(filepath.Join(d, name)); !bytes.Equal(b, first) {
				t.Fatalf("%s differs between hubs started at once", name)
			}
		}
	}

	// A hub that ran on its own before: its CA and serving certificate
	// give way to the shared CA and one it signed.
	own := t.TempDir()
	ca, err := pki.LoadOrCreateCA(own, "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Serving(own, "apiserver", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := sharedpki.Sync(ctx, cli, own, create(own)); err != nil {
		t.Fatal(err)
	}
	shared, err := pki.LoadOrCreateCA(own, "ca", "flotilla-ca")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(filepath.Join(dirs[0], "ca.crt")); !bytes.Equal(shared.CertPEM(), want) {
		t.Fatal("a hub joining the etcd kept its own CA")
	}
	pair, err := shared.Serving(own, "apiserver", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifies(shared, pair.CertFile); err != nil {
		t.Fatalf("the serving certificate was not reissued by the shared CA: %v", err)
	}
}

// A partial set (the hubs write theirs whole, so only a hand could leave
// one) is replaced whole when it lacks the CA, and refused with what to do
// when it has one.
func TestAPartialSet(t *testing.T) {
	cli := startEtcd(t)
	ctx := context.Background()
	if _, err := cli.Put(ctx, sharedpki.Prefix+"sa.key", "stale"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sharedpki.Sync(ctx, cli, dir, create(dir)); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, sharedpki.Prefix+"sa.key")
	if err != nil {
		t.Fatal(err)
	}
	if local, _ := os.ReadFile(filepath.Join(dir, "sa.key")); !bytes.Equal(resp.Kvs[0].Value, local) {
		t.Fatal("a stale sa.key in etcd was kept beside a new CA")
	}

	if _, err := cli.Delete(ctx, sharedpki.Prefix+"sa.pub"); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	err = sharedpki.Sync(ctx, cli, other, create(other))
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("got %v, want the incomplete set refused", err)
	}
}

func verifies(ca *pki.CA, certFile string) error {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool})
	return err
}
