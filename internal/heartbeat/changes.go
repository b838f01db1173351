package heartbeat

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
)

// Kind is what changed for a cluster: each is fetched on its own.
type Kind int

const (
	// Namespaces: the cluster's ClusterNamespaces.
	Namespaces Kind = iota
	// Policies: the cluster's desired policies.
	Policies
	// Jobs: the cluster's backups and restores to run.
	Jobs
	kinds
)

// Token says how far a cluster's hub objects have changed: the hub process's
// epoch, so that an agent polling a restarted hub always hears that
// something may have changed, and a count per Kind.
type Token struct {
	Epoch string
	Revs  [kinds]uint64
	// Policies is the digest of the cluster's desired policies, once the hub
	// has computed them: an agent holding that digest is up to date.
	Policies string
	// Namespaces is the NamespacesDigest of the cluster's ClusterNamespaces
	// as the hub's cache holds them, in a stream's first message, where the
	// hub computes it.
	Namespaces string
}

func (t Token) String() string {
	var b strings.Builder
	b.WriteString(t.Epoch)
	for _, r := range t.Revs {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(r, 10))
	}
	b.WriteByte('.')
	b.WriteString(t.Policies)
	b.WriteByte('.')
	b.WriteString(t.Namespaces)
	return b.String()
}

// ParseToken reads a token String made, or an earlier hub's, which had no
// Namespaces; ok is false for anything else.
func ParseToken(s string) (t Token, ok bool) {
	parts := strings.Split(s, ".")
	if n := len(parts); (n != 2+int(kinds) && n != 3+int(kinds)) || parts[0] == "" {
		return Token{}, false
	}
	t.Epoch, t.Policies = parts[0], parts[1+kinds]
	if len(parts) > 2+int(kinds) {
		t.Namespaces = parts[2+kinds]
	}
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

// Changes counts, per cluster, changes to the hub objects its agent acts on,
// and tells the cluster's stream when they change.
//
// Agents fetch their ClusterNamespaces only when told, rather than each
// keeping watches open on the hub's apiserver: the hub sends a cluster's
// change token down its agent's stream as soon as it moves, and with every
// heartbeat reply, so a lost message delays a change by one interval at most.
//
// Desired policies are not fetched: they travel on the stream itself (see
// SetDesired), held once per distinct content however many clusters share it.
type Changes struct {
	epoch string

	mu      sync.Mutex
	digest  func(cluster string) string // NamespacesDigest of the cluster's, or ""
	state   map[string]Token            // without Epoch
	subs    map[string]*subscriber      // a cluster's open stream, if any
	desired map[string]*shared          // by digest
}

// subscriber is a cluster's stream as Changes knows it.
type subscriber struct {
	notify   func()
	replaced func() // told once a newer subscription takes its place
	tunnel   func() // asks the agent to open its tunnel
}

// NewChanges returns an empty registry with a fresh epoch.
func NewChanges() *Changes {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Changes{epoch: hex.EncodeToString(b), state: map[string]Token{}, subs: map[string]*subscriber{}, desired: map[string]*shared{}}
}

// Bump records a change of k for cluster and tells its stream.
func (c *Changes) Bump(cluster string, k Kind) {
	c.mu.Lock()
	t := c.state[cluster]
	t.Revs[k]++
	c.state[cluster] = t
	c.mu.Unlock()
	c.notify(cluster)
}

// notify tells cluster's stream, if any, that its token moved.
func (c *Changes) notify(cluster string) {
	c.mu.Lock()
	sub := c.subs[cluster]
	c.mu.Unlock()
	if sub != nil {
		// Not on the caller's goroutine: a reconciler must not wait on
		// an agent's network. notify reads the token when it sends, so
		// the order notifications run in does not matter.
		go sub.notify()
	}
}

// Subscribe calls notify after each change for cluster, until the returned
// cancel. A cluster has one subscription: a newer one for the same cluster
// replaces the older, whose replaced is then called (on a goroutine of its
// own) so that its stream can close and say why. A stream that no longer
// gets notifications is thus never left open believing it does: an
// attacker holding a copy of the identity cannot take an agent's
// notifications without the agent's stream ending, and the agent, which
// opens a new stream when its stream ends, takes them back.
func (c *Changes) Subscribe(cluster string, notify, replaced func()) (cancel func()) {
	return c.SubscribeStream(cluster, notify, replaced, nil)
}

// SubscribeStream is Subscribe for a stream that can also ask its agent to
// open a tunnel (AskTunnel).
func (c *Changes) SubscribeStream(cluster string, notify, replaced, tunnel func()) (cancel func()) {
	sub := &subscriber{notify: notify, replaced: replaced, tunnel: tunnel}
	c.mu.Lock()
	old := c.subs[cluster]
	c.subs[cluster] = sub
	c.mu.Unlock()
	if old != nil && old.replaced != nil {
		go old.replaced()
	}
	return func() {
		c.mu.Lock()
		if c.subs[cluster] == sub {
			delete(c.subs, cluster)
		}
		c.mu.Unlock()
	}
}

// AskTunnel asks cluster's agent, on its stream, to open its tunnel. It
// reports false when the cluster has no stream open to this hub.
func (c *Changes) AskTunnel(cluster string) bool {
	c.mu.Lock()
	sub := c.subs[cluster]
	c.mu.Unlock()
	if sub == nil || sub.tunnel == nil {
		return false
	}
	go sub.tunnel()
	return true
}

// DigestNamespacesWith has tokens carry digest(cluster), the
// NamespacesDigest of the cluster's ClusterNamespaces the hub holds, or ""
// when it cannot tell.
func (c *Changes) DigestNamespacesWith(digest func(cluster string) string) {
	c.mu.Lock()
	c.digest = digest
	c.mu.Unlock()
}

// Forget drops a cluster that is gone.
func (c *Changes) Forget(cluster string) {
	c.mu.Lock()
	c.release(c.state[cluster].Policies)
	delete(c.state, cluster)
	c.mu.Unlock()
}

// Token is cluster's current token, with the namespaces' digest.
func (c *Changes) Token(cluster string) string {
	tok, _, _ := c.Current(cluster, true)
	return tok
}

// Current is cluster's token and, once the hub has computed them, the
// digest of its desired policies and the policies as Desired's JSON, read
// together so that they agree. With namespaces, the token carries the
// digest of the cluster's ClusterNamespaces too: a stream's first message
// does, where an agent hears of a restarted hub, and no other needs it.
func (c *Changes) Current(cluster string, namespaces bool) (token, digest string, desired []byte) {
	c.mu.Lock()
	t := c.state[cluster]
	if sh := c.desired[t.Policies]; sh != nil {
		desired = sh.encoded
	}
	digestOf := c.digest
	c.mu.Unlock()
	t.Epoch = c.epoch
	if namespaces && digestOf != nil {
		t.Namespaces = digestOf(cluster)
	}
	return t.String(), t.Policies, desired
}
