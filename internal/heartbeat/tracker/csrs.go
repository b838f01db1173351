package tracker

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// usedCSRs are the clusters whose agents opened a stream with a certificate
// and whose requests for it (and earlier ones) may now be deleted: they have
// served their purpose, and the hub and its controller manager would each
// keep every one in memory, about 3 KB a cluster, until the requests
// expire an hour later.
//
// The deletes are made by a few workers off a queue, not by the streams: a
// restarted hub has every stream opened at once, and one delete per
// stream in flight at once held thousands of requests and dials open
// against the hub's own apiserver.
type usedCSRs struct {
	queue workqueue.TypedRateLimitingInterface[string]

	mu        sync.Mutex
	presented map[string]time.Time // cluster → NotBefore of the newest certificate its agent presented
}

// csrCleaners bounds the deletes in flight.
const csrCleaners = 2

// recordTries is how often a cluster's requests are looked at again while
// the hub has not recorded the presented certificate as the cluster's
// current: 10 times a second apart, then 10 times 5 s apart. An agent opens
// its stream as soon as its certificate is issued, usually before the hub
// has recorded it; left for the next stream, the requests of a whole fleet
// were deleted at once when its hub restarted.
const recordTries = 20

func newUsedCSRs() usedCSRs {
	return usedCSRs{
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemFastSlowRateLimiter[string](time.Second, 5*time.Second, recordTries/2),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "used-csrs"}),
		presented: map[string]time.Time{},
	}
}

// add notes that cluster's agent presented a certificate issued at
// notBefore, and queues the cluster.
func (u *usedCSRs) add(cluster string, notBefore time.Time) {
	u.note(cluster, notBefore)
	u.queue.Add(cluster)
}

func (u *usedCSRs) note(cluster string, notBefore time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if notBefore.After(u.presented[cluster]) {
		u.presented[cluster] = notBefore
	}
}

// take returns the certificate time noted for cluster and forgets it.
func (u *usedCSRs) take(cluster string) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	at := u.presented[cluster]
	delete(u.presented, cluster)
	return at
}

// cleanCSRs runs the workers until the queue shuts down.
func (t *Tracker) cleanCSRs(ctx context.Context) {
	for range csrCleaners {
		go func() {
			for {
				cluster, shutdown := t.used.queue.Get()
				if shutdown {
					return
				}
				presented := t.used.take(cluster)
				if t.forgetCSRs(ctx, cluster, presented) || t.used.queue.NumRequeues(cluster) >= recordTries {
					t.used.queue.Forget(cluster)
				} else {
					// Not recorded yet: look again in a while.
					t.used.note(cluster, presented)
					t.used.queue.AddRateLimited(cluster)
				}
				t.used.queue.Done(cluster)
			}
		}()
	}
}

// forgetCSRs deletes the certificate requests of cluster whose certificates
// are no newer than the one its agent presented. It returns false while the
// hub has not recorded that certificate as the cluster's current: a
// certificate newer than the recorded one is kept, since recording it reads
// it from its request, and only the recorded one may renew the identity.
func (t *Tracker) forgetCSRs(ctx context.Context, cluster string, presented time.Time) bool {
	// Through the index: listing every cluster's requests for each of a
	// reconnecting fleet's streams held 6 GB at 3,000 clusters.
	var list certificatesv1.CertificateSigningRequestList
	if err := t.Client.List(ctx, &list, client.MatchingFields{fv1.AgentCSRClusterIndex: cluster}, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "listing the cluster's certificate requests", "cluster", cluster)
		return true
	}
	if len(list.Items) == 0 {
		return true
	}
	var c fv1.Cluster
	if err := t.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c, client.UnsafeDisableDeepCopy); err != nil {
		return client.IgnoreNotFound(err) == nil
	}
	if c.Status.AgentCertificate == nil || c.Status.AgentCertificate.Issued.Time.Before(presented) {
		return false
	}
	recorded := c.Status.AgentCertificate.Issued.Time
	for i := range list.Items {
		csr := &list.Items[i]
		block, _ := pem.Decode(csr.Status.Certificate)
		if block == nil {
			continue // not issued yet
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || cert.Subject.CommonName != fv1.AgentUser(cluster) || cert.NotBefore.After(presented) || cert.NotBefore.After(recorded) {
			continue
		}
		uid := csr.UID
		if err := t.Client.Delete(ctx, csr, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			log.FromContext(ctx).Error(err, "deleting a used certificate request", "cluster", cluster, "csr", csr.Name)
		}
	}
	return true
}
