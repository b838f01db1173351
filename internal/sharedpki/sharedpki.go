// Package sharedpki keeps what makes a hub's identity (its certificate
// authorities and the service-account signing key) in the etcd cluster its
// hubs share. Every hub on that etcd then serves with certificates agents and
// users already trust, and accepts the identities and tokens any of them
// issued: agents can follow whichever hub leads.
//
// The keys sit in etcd beside the hub's Secrets, which etcd already holds:
// whoever can read etcd could take over the hub either way.
package sharedpki

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix is where the files live in etcd, beside the apiserver's own
// /flotilla/registry.
const Prefix = "/flotilla/pki/"

// Files are the PKI directory's files every hub on one etcd holds alike;
// serving and client certificates are each hub's own, issued from these.
var Files = []string{"ca.crt", "ca.key", "sa.key", "sa.pub", "heartbeat-ca.crt", "heartbeat-ca.key"}

// Sync makes dir's shared files those stored in etcd. The first hub to
// start stores its own, which create makes if they do not exist yet; one
// that loses that race, or starts later, takes the stored ones and keeps
// nothing of its own. Leaf certificates signed by a replaced CA are
// reissued by package pki, which checks each against its CA.
func Sync(ctx context.Context, cli *clientv3.Client, dir string, create func() error) error {
	stored, err := fetch(ctx, cli)
	if err != nil {
		return err
	}
	if !complete(stored) {
		if err := create(); err != nil {
			return err
		}
		if stored, err = publish(ctx, cli, dir); err != nil {
			return err
		}
	}
	for _, name := range Files {
		if err := writeIfChanged(filepath.Join(dir, name), stored[name]); err != nil {
			return err
		}
	}
	return nil
}

// fetch reads the stored files; a partial set counts as none stored, and
// is replaced whole.
func fetch(ctx context.Context, cli *clientv3.Client) (map[string][]byte, error) {
	resp, err := cli.Get(ctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading the hubs' shared certificate authorities from etcd: %w", err)
	}
	return files(resp.Kvs), nil
}

// publish stores dir's files unless another hub stored a set first, and
// returns the set that won.
func publish(ctx context.Context, cli *clientv3.Client, dir string) (map[string][]byte, error) {
	first := Prefix + Files[0]
	var puts []clientv3.Op
	local := map[string][]byte{}
	for _, name := range Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		local[name] = b
		puts = append(puts, clientv3.OpPut(Prefix+name, string(b)))
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(first), "=", 0)).
		Then(puts...).
		Else(clientv3.OpGet(Prefix, clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("storing the hub's certificate authorities in etcd: %w", err)
	}
	if resp.Succeeded {
		return local, nil
	}
	stored := files(resp.Responses[0].GetResponseRange().Kvs)
	if !complete(stored) {
		return nil, fmt.Errorf("etcd holds an incomplete set of the hubs' certificate authorities under %s (%d of %d files: %s); put back the missing ones from a hub's pki directory, or delete the keys so that the next hub stores a new set (every agent and user then needs new credentials)", Prefix, len(stored), len(Files), strings.Join(Files, ", "))
	}
	return stored, nil
}

// complete says whether every one of Files is stored.
func complete(stored map[string][]byte) bool {
	for _, name := range Files {
		if _, ok := stored[name]; !ok {
			return false
		}
	}
	return true
}

func files(kvs []*mvccpb.KeyValue) map[string][]byte {
	out := map[string][]byte{}
	for _, kv := range kvs {
		out[string(bytes.TrimPrefix(kv.Key, []byte(Prefix)))] = kv.Value
	}
	return out
}

func writeIfChanged(path string, b []byte) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o600)
}
