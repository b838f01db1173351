package hub

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// cacheOptions shapes the manager's cache: it holds only what the hub's
// reconcilers read, since every cached object is held once per cluster
// (its bootstrap token) or five times (its namespaces).
func cacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			// The hub reads only its own bootstrap tokens, never every Secret.
			&corev1.Secret{}: {Label: labels.SelectorFromSet(nil).Add(clusterLabelExists()), Transform: chain(strip, tokenFields)},
			// The reach reconciler's own; the hub reads no other RBAC.
			&rbacv1.ClusterRole{}:        {Label: labels.SelectorFromSet(nil).Add(labelExists(fv1.LabelReachPolicy))},
			&rbacv1.ClusterRoleBinding{}: {Label: labels.SelectorFromSet(nil).Add(labelExists(fv1.LabelReachPolicy))},
			&fv1.ClusterNamespace{}:      {Transform: chain(strip, namespaceFields)},
		},
		// No reconciler reads managedFields, which are a third of a small
		// object.
		DefaultTransform: strip,
	}
}

func chain(fs ...toolscache.TransformFunc) toolscache.TransformFunc {
	return func(o any) (any, error) {
		var err error
		for _, f := range fs {
			if o, err = f(o); err != nil {
				return nil, err
			}
		}
		return o, nil
	}
}

// tokenFields keeps of a bootstrap token Secret its metadata and its
// expiry: the hub schedules expiry from it and spends a token by patching
// labels, annotations and expiry, never by writing back what it read. The
// token itself need not sit in the hub's memory.
func tokenFields(o any) (any, error) {
	if s, ok := o.(*corev1.Secret); ok {
		exp, has := s.Data["expiration"]
		s.Data, s.StringData = nil, nil
		if has {
			s.Data = map[string][]byte{"expiration": exp}
		}
	}
	return o, nil
}

// namespaceFields drops a ClusterNamespace's status conditions, which only
// its agent writes and no hub reconciler reads, from each of the five or
// more namespaces every cluster has in the cache. Reconcilers update
// ClusterNamespaces, never their status, so none writes the gap back.
func namespaceFields(o any) (any, error) {
	if n, ok := o.(*fv1.ClusterNamespace); ok {
		n.Status.Conditions = nil
	}
	return o, nil
}
