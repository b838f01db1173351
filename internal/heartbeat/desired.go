package heartbeat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Desired is what a cluster must hold (the data policy.Encode renders),
// named by the digest of its content. The hub pushes it down the cluster's
// stream when it changes and in a stream's first reply; clusters whose
// policies render the same share one copy in the hub's memory, and a
// change costs the hub no write per cluster.
type Desired struct {
	Digest string            `json:"digest"`
	Data   map[string]string `json:"data"`
}

// digestOf names data by its content. encoding/json writes map keys
// sorted, so equal data has one encoding.
func digestOf(data map[string]string) (string, []byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), raw, nil
}

// Verify checks that d's content is what its digest names: a push cut
// short or garbled is refused rather than applied.
func (d *Desired) Verify() error {
	got, _, err := digestOf(d.Data)
	if err != nil {
		return err
	}
	if got != d.Digest {
		return fmt.Errorf("desired policies named %q hold content of digest %q", d.Digest, got)
	}
	return nil
}

// shared is one distinct desired state and how many clusters hold it.
type shared struct {
	encoded []byte // Desired as JSON
	refs    int
}

// SetDesired records data as cluster's desired policies and, if that
// changed them, tells the cluster's stream, which pushes them. It reports
// the digest and whether they changed. The data is not written anywhere:
// the hub renders it from the Policies, Clusters and ClusterNamespaces it
// holds, so a restarted hub renders it again, and the agent keeps what it
// applied in the member cluster.
func (c *Changes) SetDesired(cluster string, data map[string]string) (digest string, changed bool, err error) {
	digest, raw, err := digestOf(data)
	if err != nil {
		return "", false, err
	}
	c.mu.Lock()
	t := c.state[cluster]
	if t.Policies == digest {
		c.mu.Unlock()
		return digest, false, nil
	}
	sh := c.desired[digest]
	if sh == nil {
		enc, err := json.Marshal(struct {
			Digest string          `json:"digest"`
			Data   json.RawMessage `json:"data"`
		}{digest, raw})
		if err != nil {
			c.mu.Unlock()
			return "", false, err
		}
		sh = &shared{encoded: enc}
		c.desired[digest] = sh
	}
	sh.refs++
	c.release(t.Policies)
	t.Policies = digest
	t.Revs[Policies]++
	c.state[cluster] = t
	c.mu.Unlock()
	c.notify(cluster)
	return digest, true, nil
}

// release drops one cluster's hold on the desired state named digest.
// c.mu is held.
func (c *Changes) release(digest string) {
	if sh := c.desired[digest]; sh != nil {
		if sh.refs--; sh.refs <= 0 {
			delete(c.desired, digest)
		}
	}
}

// Shared counts the distinct desired states the hub holds.
func (c *Changes) Shared() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.desired)
}
