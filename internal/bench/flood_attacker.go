package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/pki"
)

// floodID is one cluster's agent identity, as an attacker holds it.
type floodID struct {
	cluster string
	url     string
	rt      func() *http.Transport // a new connection's transport
	rest    *rest.Config           // the identity on the hub's apiserver
	watch   client.WithWatch       // the admin's, to count the Cluster's writes
}

// floodIdentity signs an agent certificate for cluster's current attach
// with the hub's CA, and reads where streams open.
func floodIdentity(ctx context.Context, admin client.Client, hubDir, cluster string) (*floodID, error) {
	var c fv1.Cluster
	if err := admin.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil {
		return nil, err
	}
	var info corev1.ConfigMap
	for {
		err := admin.Get(ctx, client.ObjectKey{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}, &info)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading hub info: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(hubDir, "pki"), "ca", "flotilla-ca")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(filepath.Dir(hubDir), "flood-identity")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pair, err := ca.Client(dir, "agent", fv1.AgentUser(cluster), fv1.AgentGroup, fv1.AttachGroup(string(c.UID)))
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(info.Data["heartbeatCA"]))
	adminCfg, err := kubeconfig.Load(filepath.Join(hubDir, "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	as := rest.AnonymousClientConfig(adminCfg)
	as.CertFile, as.KeyFile, as.QPS = pair.CertFile, pair.KeyFile, -1
	return &floodID{
		cluster: cluster, url: info.Data["heartbeatURL"], rest: as,
		rt: func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
		},
	}, nil
}

// floodReports writes reports on one stream without waiting for replies
// (at most 200 unanswered), each with other health, and with policies a
// new policy report each; it counts replies and the Cluster's writes.
func (f *floodID) floodReports(ctx context.Context, admin client.Client, policies bool) string {
	rt := f.rt()
	defer rt.CloseIdleConnections()
	var replies, refused, retried atomic.Int64
	var writes atomic.Int64
	stopWatch, err := watchWrites(ctx, f.watch, f.cluster, &writes)
	if err != nil {
		return "watching the Cluster: " + err.Error()
	}
	defer stopWatch()
	conn, err := heartbeat.Upgrade(ctx, rt, f.url)
	if err != nil {
		return "stream: " + err.Error()
	}
	defer conn.Close()
	credit := make(chan struct{}, 200)
	go func() {
		dec := json.NewDecoder(conn)
		for {
			var m heartbeat.Message
			if dec.Decode(&m) != nil {
				return
			}
			if m.Reply != nil {
				replies.Add(1)
				if m.Reply.Refused != "" || m.Reply.Error != "" {
					refused.Add(1)
				}
				if m.Reply.Retry != "" {
					retried.Add(1)
				}
				select {
				case <-credit:
				default:
				}
			}
		}
	}()
	go func() { <-ctx.Done(); conn.Close() }()
	start := time.Now()
	enc := json.NewEncoder(conn)
	for i := int32(1); ctx.Err() == nil; i++ {
		select {
		case credit <- struct{}{}:
		case <-ctx.Done():
		}
		r := heartbeat.Report{IntervalSeconds: 10, Reachable: true, Pods: i}
		if policies {
			r.Policies = &fv1.ClusterPolicyStatus{Synced: "True", Objects: i}
		}
		if enc.Encode(r) != nil {
			break
		}
	}
	elapsed := time.Since(start)
	time.Sleep(2 * heartbeat.MinWriteGap) // the last coalesced write
	n := writes.Load()
	note := fmt.Sprintf("%.0f replies/s; %d Cluster writes (%.1f/s)", float64(replies.Load())/elapsed.Seconds(), n, float64(n)/elapsed.Seconds())
	if policies {
		note += fmt.Sprintf("; %d replies asked to retry later", retried.Load())
	}
	if n := refused.Load(); n > 0 {
		note += fmt.Sprintf("; %d refused", n)
	}
	return note
}

// watchWrites counts the writes of Cluster name until the returned stop.
func watchWrites(ctx context.Context, cl client.WithWatch, name string, writes *atomic.Int64) (stop func(), err error) {
	w, err := cl.Watch(ctx, &fv1.ClusterList{}, client.MatchingFields{"metadata.name": name})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for ev := range w.ResultChan() {
			if first && ev.Type == watch.Added {
				first = false // the watch's start, not a write
				continue
			}
			writes.Add(1)
		}
	}()
	return func() { w.Stop(); <-done }, nil
}

// floodStreams opens streams of the identity with dialers at once, each
// sending one report and keeping what it opened, until ctx ends.
func (f *floodID) floodStreams(ctx context.Context, dialers int) string {
	var opened, limited, failed atomic.Int64
	var mu sync.Mutex
	var streams []*heartbeat.Stream
	var firstFail atomic.Value
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := f.rt()
			for ctx.Err() == nil {
				s, err := heartbeat.Dial(ctx, rt, f.url, func(string) {})
				switch {
				case err != nil && strings.Contains(err.Error(), "429"):
					limited.Add(1)
					continue
				case err != nil && ctx.Err() == nil:
					failed.Add(1)
					firstFail.CompareAndSwap(nil, err.Error())
					continue
				case err != nil:
					continue
				}
				opened.Add(1)
				bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s.Beat(bctx, heartbeat.Report{IntervalSeconds: 10, Reachable: true})
				cancel()
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	live := 0
	mu.Lock()
	for _, s := range streams {
		select {
		case <-s.Done():
		default:
			live++
		}
		s.Close()
	}
	mu.Unlock()
	note := fmt.Sprintf("%d opened, %d refused 429, %d failed; %d still open at the end", opened.Load(), limited.Load(), failed.Load(), live)
	if why, ok := firstFail.Load().(string); ok {
		note += "; failed e.g.: " + why
	}
	return note
}

// floodObjects creates up to n ClusterNamespaces and n Leases in the
// identity's hub namespace, and counts how many the hub refuses. What it
// created is left: the hub is thrown away.
func (f *floodID) floodObjects(ctx context.Context, n int) string {
	cl, err := client.New(f.rest, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err.Error()
	}
	ns := fv1.HubNamespace(f.cluster)
	count := func(create func(i int) error) (made, refused int, first string) {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			if err := create(i); err != nil {
				if ctx.Err() != nil {
					break
				}
				refused++
				if first == "" {
					first = err.Error()
				}
				continue
			}
			made++
		}
		return made, refused, first
	}
	cnMade, cnRefused, cnWhy := count(func(i int) error {
		return cl.Create(ctx, &fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%d", i)}})
	})
	leaseMade, leaseRefused, leaseWhy := count(func(i int) error {
		return cl.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%d", i)}})
	})
	note := fmt.Sprintf("ClusterNamespaces %d created, %d refused; Leases %d created, %d refused", cnMade, cnRefused, leaseMade, leaseRefused)
	for _, why := range []string{cnWhy, leaseWhy} {
		if why != "" {
			note += "; e.g. " + why
		}
	}
	return note
}
