package controller

import (
	"context"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
}

// SetupWithManager registers the reconciler.
func (r *CSRReconciler) SetupWithManager(mgr ctrl.Manager) error {
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
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName || decided(&csr) {
		return ctrl.Result{}, nil
	}
	request, ok := parseAgentCSR(&csr)
	if !ok {
		return ctrl.Result{}, nil
	}
	var cluster fv1.Cluster
	err := r.get(ctx, client.ObjectKey{Name: request.Cluster}, &cluster)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	exists := err == nil && cluster.DeletionTimestamp == nil

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
	v := reviewAgentCSR(request, tok, exists)
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

	if !exists || v.Reason == "AgentRotation" {
		return ctrl.Result{}, nil
	}
	// A refusal gets its own condition, so a reuse attempt does not make a
	// registered cluster look unregistered.
	before := cluster.DeepCopy()
	cond := metav1.Condition{Type: fv1.ClusterConditionRegistered, Status: metav1.ConditionTrue, Reason: v.Reason, Message: v.Message}
	if v.Deny {
		cond.Type = fv1.ClusterConditionBootstrapRefused
		cond.Message += " (at " + time.Now().UTC().Format(time.RFC3339) + ")"
	}
	meta.SetStatusCondition(&cluster.Status.Conditions, cond)
	return ctrl.Result{}, r.Client.Status().Patch(ctx, &cluster, client.MergeFrom(before))
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return true
		}
	}
	return false
}
