// Package etcd runs an etcd member inside the current process. The hub and
// local clusters use it as their default store; `flotilla etcd` runs one member
// of a multi-member cluster for a highly available hub.
package etcd

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config says where a member keeps its data and how it is reached.
type Config struct {
	// Name of the member; unique within its cluster.
	Name string
	// DataDir holds the member's data; reused on restart.
	DataDir string
	// ClientURL and PeerURL are served by this member, e.g. http://127.0.0.1:2379.
	ClientURL, PeerURL string
	// InitialCluster lists all members as name=peerURL,...; empty for a single member.
	InitialCluster string
	// LogFile receives etcd's log; empty discards warnings and below.
	LogFile string
}

// Member is a running etcd member.
type Member struct {
	e *embed.Etcd
}

// Start starts the member and waits until it serves clients or ctx ends.
func Start(ctx context.Context, c Config) (*Member, error) {
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.DataDir
	cu, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("etcd client URL %q: %w", c.ClientURL, err)
	}
	pu, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("etcd peer URL %q: %w", c.PeerURL, err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = c.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(c.Name)
		// A single member has no peer to wait for: elect itself at once.
		cfg.TickMs, cfg.ElectionMs = 10, 100
	}
	cfg.InitialClusterToken = "flotilla"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{"/dev/null"}
	if c.LogFile != "" {
		cfg.LogOutputs = []string{c.LogFile}
	}
	// Compact hourly so a long-lived control plane does not grow without bound.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	// etcd keeps the raft entries since its last snapshot in memory, plus
	// those a slow follower may need: at 10000 and 5000, some 45 MB while
	// a hub registers clusters. A snapshot costs little here.
	cfg.SnapshotCount = 2500
	if c.InitialCluster == "" {
		cfg.SnapshotCatchUpEntries = 500 // no follower to catch up
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd in %s: %w", c.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Member{e: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s did not become ready in 60s; see its log", c.DataDir)
	}
}

// Err reports a fatal error of the running member.
func (m *Member) Err() <-chan error { return m.e.Err() }

// Close stops the member, waiting at most 3 s for clients to go.
func (m *Member) Close() {
	done := make(chan struct{})
	go func() { m.e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}
