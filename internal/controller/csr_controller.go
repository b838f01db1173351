package controller

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/registration"
)

// CSRReconciler approves or denies the certificate requests of registering
// agents; the hub's controller manager (or a host cluster's) signs approved
// ones with the apiserver's client CA.
type CSRReconciler struct {
	Client client.Client
	// APIReader reads past the cache: a token created a moment ago may not
	// be in it yet, and a refusal is final for the agent.
	APIReader client.Reader
	// MaxLifetime is the longest agent certificate the hub approves.
	MaxLifetime time.Duration
	// Events, if set, records registrations and rotations on Clusters.
	Events record.EventRecorder

	// Reviews of one cluster's requests run one at a time (locks), and
	// approved remembers the request each cluster had approved last: the
	// cache shows an approval a moment after it is written, and a second
	// request reviewed in that moment must still see it.
	locks    sync.Map // cluster name -> *sync.Mutex
	approved sync.Map // cluster name -> types.UID
}

// DefaultAgentCertificateLifetime is the hub's default for MaxLifetime.
const DefaultAgentCertificateLifetime = 24 * time.Hour

// SetupWithManager registers the reconciler.
func (r *CSRReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxLifetime <= 0 {
		r.MaxLifetime = DefaultAgentCertificateLifetime
	}
	// Whether a cluster has a request in flight is asked on every review.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &certificatesv1.CertificateSigningRequest{}, fv1.AgentCSRClusterIndex, func(o client.Object) []string {
		if req, ok := parseAgentCSR(o.(*certificatesv1.CertificateSigningRequest)); ok {
			return []string{req.Cluster}
		}
		return nil
	}); err != nil {
		return err
	}
	// Registrations come in bursts when a fleet is attached at once.
	return ctrl.NewControllerManagedBy(mgr).For(&certificatesv1.CertificateSigningRequest{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 16}).
		Complete(r)
}

// get reads from the cache, and past it when the cache does not have the
// object (yet).
func (r *CSRReconciler) get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	err := r.Client.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, obj)
	}
	return err
}

// Reconcile reviews one pending CSR.
func (r *CSRReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var csr certificatesv1.CertificateSigningRequest
	if err := r.Client.Get(ctx, req.NamespacedName, &csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		return ctrl.Result{}, nil
	}
	request, ok := parseAgentCSR(&csr)
	if !ok {
		return ctrl.Result{}, nil
	}
	if decided(&csr) {
		return ctrl.Result{}, r.recordIssued(ctx, &csr, request)
	}
	mu, _ := r.locks.LoadOrStore(request.Cluster, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	var cluster fv1.Cluster
	err := r.get(ctx, client.ObjectKey{Name: request.Cluster}, &cluster)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	exists := err == nil && cluster.DeletionTimestamp == nil
	state := clusterState{Exists: exists, MaxLifetime: r.MaxLifetime}
	if exists {
		state.UID, state.NameOnly = string(cluster.UID), cluster.Annotations[fv1.AnnotationNameOnlyIdentity] == "true"
		if cert := cluster.Status.AgentCertificate; cert != nil {
			state.Current = cert.SHA256
		}
		if state.Outstanding, err = r.outstanding(ctx, &csr, &cluster); err != nil {
			return ctrl.Result{}, err
		}
	}

	var tok tokenState
	var secret corev1.Secret
	if id, ok := bootstrapTokenID(request.Requestor); ok {
		err := r.get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id}, &secret)
		if err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		if err == nil {
			tok = tokenState{Found: true, Cluster: secret.Labels[fv1.LabelCluster], Used: secret.Labels[registration.LabelUsed] == "true",
				UsedByThis: secret.Annotations[registration.AnnotationUsedBy] == string(csr.UID)}
		}
	}
	v := reviewAgentCSR(request, tok, state)
	if !v.Approve && !v.Deny {
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).Info("reviewed agent CSR", "cluster", request.Cluster, "approve", v.Approve, "reason", v.Reason)

	// Spend the token before approving, so a crash between the two cannot
	// leave a token usable twice.
	if v.Approve && tok.Found {
		before := secret.DeepCopy()
		registration.Spend(&secret, string(csr.UID), time.Now())
		if err := r.Client.Patch(ctx, &secret, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, err
		}
	}
	approval := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: v.Reason, Message: v.Message, LastUpdateTime: metav1.Now(),
	}
	if v.Deny {
		approval.Type = certificatesv1.CertificateDenied
	}
	csr.Status.Conditions = append(csr.Status.Conditions, approval)
	if err := r.Client.SubResource("approval").Update(ctx, &csr); err != nil {
		return ctrl.Result{}, err
	}
	if v.Approve {
		r.approved.Store(request.Cluster, csr.UID)
	}

	// Only a credential issued for this cluster speaks of its registration:
	// a token of another cluster naming it must not set its conditions.
	if !exists || !tok.Found || tok.Cluster != request.Cluster {
		return ctrl.Result{}, nil
	}
	// A refusal gets its own condition, so a reuse attempt does not make a
	// registered cluster look unregistered.
	cond := metav1.Condition{Type: fv1.ClusterConditionRegistered, Status: metav1.ConditionTrue, Reason: v.Reason, Message: v.Message}
	if v.Deny {
		cond.Type = fv1.ClusterConditionBootstrapRefused
		cond.Message += " (at " + time.Now().UTC().Format(time.RFC3339) + ")"
	}
	// Written here or never: the request, now decided, is not reviewed
	// again. Conditions are one list, so the patch must apply to the
	// Cluster as it is: laid over a stale copy it would drop a condition
	// another writer set meanwhile, or have its own dropped the same way.
	if err := retry.RetryOnConflict(registeredRetry, func() error {
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(&cluster), &cluster); err != nil {
			return err
		}
		before := cluster.DeepCopy()
		meta.SetStatusCondition(&cluster.Status.Conditions, cond)
		return r.Client.Status().Patch(ctx, &cluster, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	reviewed(r.Events, &cluster, v)
	return ctrl.Result{}, nil
}

// registeredRetry spaces the reviewer's attempts to write a cluster's
// Registered condition while other writers change the Cluster, as a fleet
// registering does: about 10 s in all.
var registeredRetry = wait.Backoff{Steps: 12, Duration: 50 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: 2 * time.Second}

// outstanding says whether cluster c has a request, older than csr and
// bound to its current attach, that is not yet decided, approved and not
// yet issued, or issued and not yet recorded as the current certificate:
// one at a time, so an identity cannot mint certificates faster than the
// hub records which one is current.
func (r *CSRReconciler) outstanding(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, c *fv1.Cluster) (bool, error) {
	var list certificatesv1.CertificateSigningRequestList
	if err := r.Client.List(ctx, &list, client.MatchingFields{fv1.AgentCSRClusterIndex: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	last, _ := r.approved.Load(c.Name)
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == csr.UID || denied(o) {
			continue
		}
		if req, ok := parseAgentCSR(o); !ok || !boundTo(c, req.Attach) {
			continue // a request of an earlier attach holds up nothing
		}
		if o.UID == last && len(o.Status.Certificate) == 0 {
			return true, nil // approved here, not yet issued
		}
		if len(o.Status.Certificate) > 0 {
			if cert, err := parseCertificate(o.Status.Certificate); err == nil && !recorded(c, cert) {
				return true, nil
			}
			continue
		}
		if decided(o) {
			return true, nil // approved, not yet issued
		}
		if o.CreationTimestamp.Before(&csr.CreationTimestamp) || o.CreationTimestamp.Equal(&csr.CreationTimestamp) && o.Name < csr.Name {
			return true, nil
		}
	}
	return false, nil
}

// boundTo says whether a certificate naming attach belongs to c's current attach.
func boundTo(c *fv1.Cluster, attach string) bool {
	return attach == string(c.UID) || attach == "" && c.Annotations[fv1.AnnotationNameOnlyIdentity] == "true"
}

// recorded says whether cert is c's recorded current certificate, or older.
func recorded(c *fv1.Cluster, cert *x509.Certificate) bool {
	cur := c.Status.AgentCertificate
	return cur != nil && (cur.SHA256 == fingerprint(cert) || cert.NotBefore.Before(cur.Issued.Time))
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func parseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no certificate in PEM data")
	}
	return x509.ParseCertificate(block.Bytes)
}

// recordIssued records the certificate of an approved agent request, once
// signed, as its cluster's current one, unless a newer one is recorded:
// only the current certificate may renew the identity.
func (r *CSRReconciler) recordIssued(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, req csrRequest) error {
	if len(csr.Status.Certificate) == 0 || denied(csr) {
		return nil
	}
	cert, err := parseCertificate(csr.Status.Certificate)
	if err != nil || cert.Subject.CommonName != fv1.AgentUser(req.Cluster) {
		return nil
	}
	// First from the cache; after a conflict (a registering cluster's status
	// changes several times a second) from the apiserver, as the Cluster is
	// now: the request is not reviewed again, so a requeue would only log.
	var cluster fv1.Cluster
	var before *fv1.Cluster
	read := client.Reader(r.Client)
	err = retry.RetryOnConflict(registeredRetry, func() error {
		if err := read.Get(ctx, client.ObjectKey{Name: req.Cluster}, &cluster); err != nil {
			return err
		}
		read = r.APIReader
		if !boundTo(&cluster, fv1.AttachOf(cert.Subject.Organization)) || recorded(&cluster, cert) {
			before = nil
			return nil // issued for an earlier attach, or no newer than the one recorded
		}
		before = cluster.DeepCopy()
		cluster.Status.AgentCertificate = &fv1.AgentCertificate{
			SHA256: fingerprint(cert), Issued: metav1.NewTime(cert.NotBefore), NotAfter: metav1.NewTime(cert.NotAfter),
		}
		return r.Client.Status().Patch(ctx, &cluster, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil || before == nil {
		return client.IgnoreNotFound(err)
	}
	r.issued(ctx, before, &cluster, req)
	return nil
}

func denied(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return true
		}
	}
	return false
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return true
		}
	}
	return false
}
