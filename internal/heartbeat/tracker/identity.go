package tracker

import (
	"context"
	"crypto/x509"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// refusal says why cert may not speak for c, or "" if it may: a certificate
// is bound to one attach of its cluster (the Cluster's UID in its
// organizations), so one from before a detach is refused after the cluster
// is attached again under the same name. A certificate naming no attach is
// an earlier version's, accepted only for a Cluster that version attached.
func refusal(c *fv1.Cluster, attach string) string {
	switch {
	case attach == string(c.UID):
		return ""
	case attach == "" && c.Annotations[fv1.AnnotationNameOnlyIdentity] == "true":
		return ""
	case attach == "":
		return "the certificate names no attach of cluster " + c.Name + ": it is from an earlier Flotilla version's attach, which detaching revoked; attach the cluster again and register a current agent"
	}
	return "the certificate was issued for an earlier attach of cluster " + c.Name + ", which detaching revoked; attach the cluster again for a new bootstrap credential"
}

// attachOf names the attach a stream's client certificate is bound to.
func attachOf(cert *x509.Certificate) string { return fv1.AttachOf(cert.Subject.Organization) }

// stillAttached says why a stream opened for attach of cluster must end, or
// "" if it goes on: the cluster may have been detached and attached again
// since the stream opened. A Cluster that is gone is Observe's to report.
func (t *Tracker) stillAttached(ctx context.Context, cluster, attach string) string {
	var c fv1.Cluster
	if err := t.Client.Get(ctx, client.ObjectKey{Name: cluster}, &c, client.UnsafeDisableDeepCopy); err != nil {
		return ""
	}
	return refusal(&c, attach)
}

// ofOtherAttach says whether what the tracker holds of c's name was observed
// of an earlier attach: that agent's silence must not make the new attach
// Disconnected before its own agent has reported.
func (t *Tracker) ofOtherAttach(c *fv1.Cluster) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	uid, ok := t.attach[c.Name]
	return ok && uid != c.UID
}
