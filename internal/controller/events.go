package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/metrics"
)

// EventSource names the hub's Events.
const EventSource = "flotilla-hub"

// reviewed tells, on the Cluster, how its agent's registration was decided:
// once per bootstrap request, which a credential allows once.
func reviewed(rec record.EventRecorder, c *fv1.Cluster, v verdict) {
	if rec == nil {
		return
	}
	if v.Deny {
		rec.Eventf(c, corev1.EventTypeWarning, "BootstrapRefused", "%s: %s", v.Reason, v.Message)
		return
	}
	rec.Eventf(c, corev1.EventTypeNormal, "Registered", "the agent registered with its bootstrap credential (%s)", v.Reason)
}

// issued tells of the certificate just recorded as c's current: the first
// ends a registration, whose duration is measured from the bootstrap token's
// creation; a later one is a rotation.
func (r *CSRReconciler) issued(ctx context.Context, before, c *fv1.Cluster, req csrRequest) {
	if before.Status.AgentCertificate != nil {
		if r.Events != nil {
			r.Events.Eventf(c, corev1.EventTypeNormal, "CertificateRotated",
				"the agent's certificate was renewed; it expires at %s", c.Status.AgentCertificate.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		}
		return
	}
	// The token and the Cluster are made together by attach; the Cluster
	// stands in for a token already gone.
	created := c.CreationTimestamp
	if id, ok := bootstrapTokenID(req.Requestor); ok {
		var s corev1.Secret
		if err := r.get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id}, &s); err == nil {
			created = s.CreationTimestamp
		}
	}
	metrics.Registered(created.Time)
}
