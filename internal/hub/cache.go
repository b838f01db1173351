package hub

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/registration"
)

// cacheOptions shapes the manager's cache: it holds only what the hub's
// reconcilers read, since every cached object is held once per cluster
// (its bootstrap token) or five times (its namespaces).
func cacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			// The hub reads only its own bootstrap tokens, never every Secret.
			&corev1.Secret{}: {Label: labels.SelectorFromSet(nil).Add(clusterLabelExists()), Transform: tokenFields},
			// The reach reconciler's own; the hub reads no other RBAC.
			&rbacv1.ClusterRole{}:        {Label: labels.SelectorFromSet(nil).Add(labelExists(fv1.LabelReachPolicy))},
			&rbacv1.ClusterRoleBinding{}: {Label: labels.SelectorFromSet(nil).Add(labelExists(fv1.LabelReachPolicy))},
			&fv1.ClusterNamespace{}:      {Transform: namespaceFields},
		},
		// No reconciler reads managedFields, which are a third of a small
		// object. A transform of ByObject replaces this one, so each of
		// those drops them too.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

// tokenFields keeps of a bootstrap token Secret its metadata and its
// expiry: the hub schedules expiry from it and spends a token by patching
// labels, annotations and expiry, never by writing back what it read.
func tokenFields(o any) (any, error) {
	if s, ok := o.(*corev1.Secret); ok {
		s.ManagedFields = nil
		registration.KeepExpiryOnly(s)
	}
	return o, nil
}

// namespaceFields drops a ClusterNamespace's status conditions, which only
// its agent writes and no hub reconciler reads, from each of the five or
// more namespaces every cluster has in the cache. Reconcilers update
// ClusterNamespaces, never their status, so none writes the gap back.
func namespaceFields(o any) (any, error) {
	if n, ok := o.(*fv1.ClusterNamespace); ok {
		n.ManagedFields, n.Status.Conditions = nil, nil
	}
	return o, nil
}
