package policycheck

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// A policy whose scope names a cluster, group, workspace or namespace that
// does not exist is accepted, with a warning: GitOps may well create a
// policy before its cluster, and the policy applies as soon as that exists.
// The warning comes from the hub's API, so kubectl users see it as the CLI's
// do.

// scopeLookupTimeout bounds the reads behind the warning: it is advice, and
// must not hold up a write when the apiserver is slow.
const scopeLookupTimeout = 2 * time.Second

// scopeWarnings names what p's scope refers to that does not exist. A read
// that fails for another reason gives no warning.
func scopeWarnings(ctx context.Context, dyn dynamic.Interface, p *fv1.Policy) []string {
	ctx, cancel := context.WithTimeout(ctx, scopeLookupTimeout)
	defer cancel()
	missing := func(r, namespace, name string) bool {
		_, err := dyn.Resource(fv1.GroupVersion.WithResource(r)).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("policy scope not checked", "policy", p.Name, "resource", r, "name", name, "err", err)
		}
		return apierrors.IsNotFound(err)
	}
	const tail = "(yet); the policy applies to nothing until it does"
	s := p.Spec.Scope
	switch {
	case s.ClusterGroup != "" && missing("clustergroups", "", s.ClusterGroup):
		return []string{fmt.Sprintf("policy scope: cluster group %q does not exist %s", s.ClusterGroup, tail)}
	case s.Cluster != "" && missing("clusters", "", s.Cluster):
		return []string{fmt.Sprintf("policy scope: cluster %q does not exist %s", s.Cluster, tail)}
	case s.Workspace != "" && missing("workspaces", "", s.Workspace):
		return []string{fmt.Sprintf("policy scope: workspace %q does not exist %s", s.Workspace, tail)}
	case s.Namespace != nil && s.Namespace.Cluster != "" && s.Namespace.Name != "":
		n := s.Namespace
		if missing("clusters", "", n.Cluster) {
			return []string{fmt.Sprintf("policy scope: cluster %q of namespace %s/%s does not exist %s", n.Cluster, n.Cluster, n.Name, tail)}
		}
		// Namespaces of attached clusters appear on the hub as
		// ClusterNamespaces in the cluster's hub namespace.
		if missing("clusternamespaces", fv1.HubNamespace(n.Cluster), n.Name) {
			return []string{fmt.Sprintf("policy scope: namespace %q does not exist in cluster %q %s", n.Name, n.Cluster, tail)}
		}
	}
	return nil
}
