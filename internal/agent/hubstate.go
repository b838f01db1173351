package agent

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/metrics"
)

// hubState is what the hub holds for this cluster that the agent acts on:
// its ClusterNamespaces and its desired policies. The agent fetches the
// namespaces when the hub says they changed (a token pushed down the
// heartbeat stream, and in every heartbeat reply) instead of watching them,
// so an agent holds no watch open on the hub's apiserver; the desired
// policies come down the stream themselves.
type hubState struct {
	hub *hubClient
	t   trigger
	// onNamespaces is called after each fetch of the namespaces, onChange
	// after each fetch and push; they must not block. A push brings desired
	// policies alone, which leave the namespace sync nothing to do: run for
	// each push anyway, it copied and compared every namespace.
	onNamespaces []func()
	onChange     []func()
	// onJobs, if set, is called when the token says the cluster's backup
	// and restore jobs changed; it must not block.
	onJobs func()

	mu      sync.Mutex
	want    heartbeat.Token // the newest token heard of
	spread  heartbeat.Token // a restarted hub's first token, until the fetch it delays
	have    heartbeat.Token // what the fetched state is at least as new as
	fetched [3]bool         // by heartbeat.Kind
	nss     []fv1.ClusterNamespace
	desired *heartbeat.Desired // nil until the hub pushes them
	// During a fetch of namespaces, the agent's own writes, by name (nil:
	// deleted), laid over the list when it returns: a list read before a
	// write would undo it, and the agent would write it again.
	overlay map[string]*fv1.ClusterNamespace
	// refetches counts the agent's asks for a fresh list of namespaces.
	refetches int
}

func newHubState(hub *hubClient) *hubState {
	return &hubState{hub: hub, t: newTrigger()}
}

// heard records a token from the hub; a new one asks for a fetch.
//
// A hub that restarted, or took over as leader, has a new epoch, and every
// agent hears it within seconds. An agent holding the namespaces the token
// digests fetches none; the others fetch at a random moment within
// restartSpread, not all at once, unless the token shows a change since.
func (s *hubState) heard(token string) {
	tok, ok := heartbeat.ParseToken(token)
	if !ok {
		return
	}
	s.mu.Lock()
	// The namespaces' digest decides a restart's fetch, and only the
	// stream's first message carries it: tokens are kept without it.
	digest := tok.Namespaces
	tok.Namespaces = ""
	restarted := s.want.Epoch != "" && tok.Epoch != s.want.Epoch
	jobs := tok.Changed(s.want, heartbeat.Jobs)
	s.want = tok
	if restarted && s.holds(digest) {
		s.have = tok
	}
	stale := tok != s.have
	if restarted {
		s.spread = tok
	}
	// Until the spread's fetch, the restart's token asks for nothing more.
	waiting := s.spread.Epoch == tok.Epoch && s.spread.Revs == tok.Revs
	s.mu.Unlock()
	if restarted {
		time.AfterFunc(rand.N(restartSpread), func() {
			s.mu.Lock()
			s.spread = heartbeat.Token{}
			s.mu.Unlock()
			s.t.poke()
			if s.onJobs != nil {
				s.onJobs()
			}
		})
	}
	if waiting {
		return
	}
	if stale {
		s.t.poke()
	}
	if jobs && s.onJobs != nil {
		s.onJobs()
	}
}

// holds says whether the namespaces fetched have the hub's digest, with
// s.mu held: a restarted hub's token then asks for no list.
func (s *hubState) holds(digest string) bool {
	return digest != "" && s.fetched[heartbeat.Namespaces] && s.overlay == nil &&
		digest == heartbeat.NamespacesDigest(s.nss)
}

// restartSpread is how long after hearing of a restarted hub an agent
// fetches again, at most: 10,000 agents that fetched the moment they heard
// put 10,000 lists and TLS handshakes on the hub at once, and their
// timeouts and retries kept it overwhelmed for minutes.
const restartSpread = 10 * time.Second

// run fetches whenever a new token is heard, until ctx ends.
func (s *hubState) run(ctx context.Context) {
	s.t.poke() // the first fetch needs no token
	s.t.run(ctx, "fetching from the hub", s.fetch)
}

// fetch reads the ClusterNamespaces if they changed since the last fetch,
// the token first so that what is read is at least as new as it.
func (s *hubState) fetch(ctx context.Context) error {
	s.mu.Lock()
	want, have, fetched, refetches := s.want, s.have, s.fetched, s.refetches
	if fetched[heartbeat.Namespaces] && !want.Changed(have, heartbeat.Namespaces) {
		s.mu.Unlock()
		return nil
	}
	s.overlay = map[string]*fv1.ClusterNamespace{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.overlay = nil
		s.mu.Unlock()
	}()
	var nss fv1.ClusterNamespaceList
	metrics.Fetched("namespaces")
	if err := s.hub.clusterNamespaces.List(ctx, &nss); err != nil {
		return err
	}
	s.mu.Lock()
	for name, cn := range s.overlay {
		nss.Items = put(nss.Items, name, cn)
	}
	// A refetch asked for during this one wants a list read after it.
	s.nss, s.fetched[heartbeat.Namespaces] = nss.Items, s.refetches == refetches
	s.have = want
	s.mu.Unlock()
	s.changed(s.onNamespaces)
	s.changed(s.onChange)
	return nil
}

// pushed takes the desired policies the hub pushed down the stream. It runs
// on the stream's reader, so what it calls must not block.
func (s *hubState) pushed(d heartbeat.Desired) {
	s.mu.Lock()
	s.desired, s.fetched[heartbeat.Policies] = &d, true
	s.mu.Unlock()
	s.changed(s.onChange)
}

func (s *hubState) changed(callbacks []func()) {
	for _, f := range callbacks {
		f()
	}
}

// namespaces returns a copy of the fetched ClusterNamespaces; ok is false
// before the first fetch.
func (s *hubState) namespaces() (nss []fv1.ClusterNamespace, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.nss {
		nss = append(nss, *s.nss[i].DeepCopy())
	}
	return nss, s.fetched[heartbeat.Namespaces]
}

// wrote records what a write of the agent's own returned, so that the next
// sync plans from it without a fetch: the hub does not announce changes the
// agent made itself. cn is nil when the write deleted it.
func (s *hubState) wrote(name string, cn *fv1.ClusterNamespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nss = put(s.nss, name, cn)
	if s.overlay != nil {
		s.overlay[name] = cn
	}
}

// put replaces the namespace called name in nss by cn, or removes it for nil.
func put(nss []fv1.ClusterNamespace, name string, cn *fv1.ClusterNamespace) []fv1.ClusterNamespace {
	i := slices.IndexFunc(nss, func(n fv1.ClusterNamespace) bool { return n.Name == name })
	switch {
	case cn == nil && i >= 0:
		return slices.Delete(nss, i, i+1)
	case cn == nil:
		return nss
	case i >= 0:
		nss[i] = *cn
		return nss
	default:
		return append(nss, *cn)
	}
}

// refetchNamespaces asks for a fetch of the ClusterNamespaces: a write found
// the hub's copy other than the agent's.
func (s *hubState) refetchNamespaces() {
	s.mu.Lock()
	s.fetched[heartbeat.Namespaces] = false
	s.refetches++
	s.mu.Unlock()
	s.t.poke()
}

// desiredPolicies returns the desired policies the hub pushed last, nil
// before the first push.
func (s *hubState) desiredPolicies() (d *heartbeat.Desired, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desired, s.fetched[heartbeat.Policies]
}
