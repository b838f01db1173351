// Package agentlimits bounds, in the hub's own apiserver, how many objects
// one agent identity may create in its hub namespace. An agent may create
// ClusterNamespaces there, one for each namespace of its cluster; without a
// bound one stolen identity could fill the hub's etcd (about 2,000 objects of
// 1 MB reach its size limit), after which every write fails for every
// cluster. Only agents are counted: what the hub's users create through the
// hub is theirs to decide.
//
// Why an admission plugin rather than a ResourceQuota in every cluster
// namespace: a quota needs kube-controller-manager's resource quota
// controller on the hub, which keeps an informer on every kind of the hub's
// objects (as the garbage collector would, which the hub does not run for
// that reason), and the quota admission writes the quota's status on every
// create, doubling the writes of a registering fleet. The plugin counts with
// one etcd range count per create, only for agents.
package agentlimits

import (
	"context"
	"fmt"
	"io"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/dynamic"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// PluginName is the admission plugin's name in the hub's apiserver.
const PluginName = "FlotillaAgentLimits"

// MaxNamespacesPerCluster is how many ClusterNamespaces an agent may keep
// in its hub namespace. Kubernetes' scalability thresholds name 10,000
// namespaces per cluster; real clusters have a few hundred. With the
// schema's bound on a ClusterNamespace's size (about 30 KB at most), one
// cluster at the bound holds at most about 150 MB of the hub's etcd.
const MaxNamespacesPerCluster = 5000

var clusterNamespaces = schema.GroupVersionResource{Group: fv1.GroupVersion.Group, Version: fv1.GroupVersion.Version, Resource: "clusternamespaces"}

// Register returns what adds the plugin to an apiserver's admission
// plugins, bounding each cluster's agent to max ClusterNamespaces (0 means
// MaxNamespacesPerCluster).
func Register(max int) func(*admission.Plugins) {
	if max <= 0 {
		max = MaxNamespacesPerCluster
	}
	return func(plugins *admission.Plugins) {
		plugins.Register(PluginName, func(io.Reader) (admission.Interface, error) {
			return &plugin{Handler: admission.NewHandler(admission.Create), max: int64(max)}, nil
		})
	}
}

type plugin struct {
	*admission.Handler
	// dynamic counts through the apiserver's loopback connection.
	dynamic dynamic.Interface
	max     int64
}

// SetDynamicClient is called by the apiserver's plugin initializer.
func (p *plugin) SetDynamicClient(c dynamic.Interface) { p.dynamic = c }

// ValidateInitialization checks that the apiserver gave the plugin a client.
func (p *plugin) ValidateInitialization() error {
	if p.dynamic == nil {
		return fmt.Errorf("%s admission plugin needs a dynamic client", PluginName)
	}
	return nil
}

// Validate refuses an agent's create of a ClusterNamespace once its hub
// namespace holds the most one cluster may. Creates admitted at the same
// moment may pass the count together: the bound can be passed by the
// requests one identity has in flight at once, not more.
func (p *plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != clusterNamespaces.GroupResource() || a.GetSubresource() != "" {
		return nil
	}
	if u := a.GetUserInfo(); u == nil || !slices.Contains(u.GetGroups(), fv1.AgentGroup) {
		return nil
	}
	n, err := p.count(ctx, a.GetNamespace())
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("counting the cluster's namespaces on the hub: %w", err))
	}
	if n >= p.max {
		cluster := fv1.ClusterOfHubNamespace(a.GetNamespace())
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(), fmt.Errorf(
			"cluster %s already has %d namespaces on the hub, the most one cluster's agent may report (%d); delete namespaces in the cluster, or detach it if its agent is not to be trusted",
			cluster, n, p.max))
	}
	return nil
}

// count is how many ClusterNamespaces ns holds: a list of one item, whose
// remaining count etcd answers from its index without reading the rest.
func (p *plugin) count(ctx context.Context, ns string) (int64, error) {
	l, err := p.dynamic.Resource(clusterNamespaces).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	n := int64(len(l.Items))
	if r := l.GetRemainingItemCount(); r != nil {
		n += *r
	}
	return n, nil
}
