package heartbeat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
)

// ChangesPath is where an agent long-polls for changes to what the hub holds
// for its cluster: GET ChangesPath?since=TOKEN answers with the current token
// once it differs from TOKEN, or after LongPoll.
//
// Agents fetch their ClusterNamespaces and desired policies only when told,
// rather than each keeping watches open on the hub's apiserver: a parked
// request here costs the hub a few kilobytes, a watch there a request
// context, its own etcd watch and several goroutines.
const ChangesPath = "/v1/changes"

// Kind is what changed for a cluster: each is fetched on its own.
type Kind int

const (
	// Namespaces: the cluster's ClusterNamespaces.
	Namespaces Kind = iota
	// Policies: the cluster's desired policies.
	Policies
	kinds
)

// Token says how far a cluster's hub objects have changed: the hub process's
// epoch, so that an agent polling a restarted hub always hears that
// something may have changed, and a count per Kind.
type Token struct {
	Epoch string
	Revs  [kinds]uint64
	// PoliciesVersion is the resourceVersion of the desired policies the
	// hub last wrote, if known: an agent reads at least that version, so a
	// cached answer cannot predate the change.
	PoliciesVersion string
}

func (t Token) String() string {
	return t.Epoch + "." + strconv.FormatUint(t.Revs[Namespaces], 10) + "." + strconv.FormatUint(t.Revs[Policies], 10) + "." + t.PoliciesVersion
}

// ParseToken reads a token String made; ok is false for anything else.
func ParseToken(s string) (t Token, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 2+int(kinds) || parts[0] == "" {
		return Token{}, false
	}
	t.Epoch, t.PoliciesVersion = parts[0], parts[1+kinds]
	for k := range kinds {
		n, err := strconv.ParseUint(parts[1+k], 10, 64)
		if err != nil {
			return Token{}, false
		}
		t.Revs[k] = n
	}
	return t, true
}

// Changed reports whether k changed between old and t.
func (t Token) Changed(old Token, k Kind) bool {
	return t.Epoch != old.Epoch || t.Revs[k] != old.Revs[k]
}

// Changes counts, per cluster, changes to the hub objects its agent acts on.
type Changes struct {
	epoch string

	mu    sync.Mutex
	state map[string]Token         // without Epoch
	ready map[string]chan struct{} // closed on the cluster's next change
}

// NewChanges returns an empty registry with a fresh epoch.
func NewChanges() *Changes {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Changes{epoch: hex.EncodeToString(b), state: map[string]Token{}, ready: map[string]chan struct{}{}}
}

// Bump records a change of k for cluster and wakes its agent's poll.
func (c *Changes) Bump(cluster string, k Kind) {
	c.bump(cluster, k, "")
}

// WrotePolicies records that the hub wrote cluster's desired policies at
// resourceVersion rv.
func (c *Changes) WrotePolicies(cluster, rv string) {
	c.bump(cluster, Policies, rv)
}

func (c *Changes) bump(cluster string, k Kind, rv string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.state[cluster]
	t.Revs[k]++
	if k == Policies {
		t.PoliciesVersion = rv
	}
	c.state[cluster] = t
	if ch, ok := c.ready[cluster]; ok {
		close(ch)
		delete(c.ready, cluster)
	}
}

// Forget drops a cluster that is gone.
func (c *Changes) Forget(cluster string) {
	c.Bump(cluster, Namespaces) // wake a poll still parked
	c.mu.Lock()
	delete(c.state, cluster)
	c.mu.Unlock()
}

// Token is cluster's current token.
func (c *Changes) Token(cluster string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token(cluster)
}

func (c *Changes) token(cluster string) string {
	t := c.state[cluster]
	t.Epoch = c.epoch
	return t.String()
}

// Wait returns cluster's token once it is not since, or when ctx ends.
func (c *Changes) Wait(ctx context.Context, cluster, since string) string {
	for {
		c.mu.Lock()
		tok := c.token(cluster)
		ch, ok := c.ready[cluster]
		if !ok && tok == since {
			ch = make(chan struct{})
			c.ready[cluster] = ch
		}
		c.mu.Unlock()
		if tok != since {
			return tok
		}
		select {
		case <-ctx.Done():
			return tok
		case <-ch:
		}
	}
}
