package agent

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	corelisters "k8s.io/client-go/listers/core/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// nsAction is one step that brings the hub's view of namespaces and the
// cluster's namespaces together.
type nsAction struct {
	Kind string // createHub, deleteHub, release, createMember, deleteMember, labelMember, status
	Name string
	// Workspace for createHub, createMember and labelMember; phase for status.
	Value string
	// Labels of the member namespace, for status.
	Labels map[string]string
}

// onHub says whether the action writes to the hub.
func (a nsAction) onHub() bool {
	return a.Kind == "createHub" || a.Kind == "deleteHub" || a.Kind == "release" || a.Kind == "status"
}

// planNamespaces compares the cluster's namespaces with the hub's
// ClusterNamespaces: every namespace of the cluster gets one (discovered
// ones in their labelled workspace or default); one created through the hub
// is created in the cluster; one deleted through the hub is deleted in the
// cluster before the hub lets it go. In a cluster attached read-only
// (readOnly) nothing is written there: a namespace created through the hub
// is not created, one deleted through the hub is let go on the hub only
// (and found again, as the cluster still has it), and no workspace label is
// set. It is a pure function.
func planNamespaces(member []corev1.Namespace, hub []fv1.ClusterNamespace, readOnly bool) []nsAction {
	inMember := map[string]*corev1.Namespace{}
	for i := range member {
		inMember[member[i].Name] = &member[i]
	}
	inHub := map[string]bool{}
	var out []nsAction
	for _, cn := range hub {
		inHub[cn.Name] = true
		ns, exists := inMember[cn.Name]
		switch {
		case cn.DeletionTimestamp != nil && exists && ns.DeletionTimestamp == nil && readOnly:
			out = append(out, nsAction{Kind: "release", Name: cn.Name})
		case cn.DeletionTimestamp != nil && exists && ns.DeletionTimestamp == nil:
			out = append(out, nsAction{Kind: "deleteMember", Name: cn.Name})
		case cn.DeletionTimestamp != nil && !exists:
			out = append(out, nsAction{Kind: "release", Name: cn.Name})
		case cn.DeletionTimestamp != nil:
			// Terminating in the cluster: wait.
		case !exists && cn.Labels[fv1.LabelDiscovered] == "true":
			out = append(out, nsAction{Kind: "deleteHub", Name: cn.Name})
		case !exists && readOnly:
			// Not the agent's to create: it waits for someone who may.
		case !exists:
			out = append(out, nsAction{Kind: "createMember", Name: cn.Name, Value: cn.Spec.Workspace})
		default:
			labels := ns.Labels
			if ns.Labels[fv1.LabelWorkspace] != cn.Spec.Workspace && !readOnly {
				out = append(out, nsAction{Kind: "labelMember", Name: cn.Name, Value: cn.Spec.Workspace})
				// The status reports the label as the action sets it: one
				// write rather than a second once the label shows.
				labels = maps.Clone(ns.Labels)
				if labels == nil {
					labels = map[string]string{}
				}
				labels[fv1.LabelWorkspace] = cn.Spec.Workspace
			}
			phase := "Active"
			if ns.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			if cn.Status.Phase != phase || !maps.Equal(cn.Status.Labels, labels) {
				out = append(out, nsAction{Kind: "status", Name: cn.Name, Value: phase, Labels: labels})
			}
		}
	}
	for _, ns := range member {
		if inHub[ns.Name] || ns.DeletionTimestamp != nil {
			continue
		}
		// A namespace found in the cluster goes into the default workspace,
		// whatever its workspace label says: the hub's users place
		// namespaces into workspaces, and the hub refuses an agent that
		// names another (it could pin a workspace not its cluster's).
		out = append(out, nsAction{Kind: "createHub", Name: ns.Name, Value: fv1.DefaultName})
	}
	return out
}

// syncNamespaces carries out the plan for the current state, as the caches
// hold it; writes go to the cluster and the hub, and what the hub returns
// goes into state. It says whether the hub's side changed, which calls for
// another pass: a namespace reported is then given its status.
func syncNamespaces(ctx context.Context, members corelisters.NamespaceLister, onHub []fv1.ClusterNamespace, cluster dynamic.Interface, hub *hubClient, state *hubState, readOnly bool) (bool, error) {
	cached, err := members.List(labels.Everything())
	if err != nil {
		return false, err
	}
	member := make([]corev1.Namespace, len(cached))
	for i, ns := range cached {
		member[i] = *ns
	}
	byName := map[string]*fv1.ClusterNamespace{}
	for i := range onHub {
		byName[onHub[i].Name] = &onHub[i]
	}
	var errs []error
	changed := false
	for _, a := range planNamespaces(member, onHub, readOnly) {
		cn, gone, err := apply(ctx, cluster, hub, a, byName[a.Name])
		stale := apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) || apierrors.IsConflict(err)
		switch {
		case err == nil && cn != nil:
			if gone {
				cn = nil
			}
			state.wrote(a.Name, cn)
			changed = true
		case stale && a.onHub():
			// The hub's copy is not what this agent last saw.
			state.refetchNamespaces()
		case err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err):
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return changed, errs[0]
	}
	return changed, nil
}

// apply carries out one action. For a write to the hub it returns the hub's
// object as the write left it, and whether the write removed it.
func apply(ctx context.Context, cluster dynamic.Interface, hub *hubClient, a nsAction, cn *fv1.ClusterNamespace) (*fv1.ClusterNamespace, bool, error) {
	members := cluster.Resource(namespacesResource)
	switch a.Kind {
	case "createHub":
		created, err := hub.clusterNamespaces.Create(ctx, &fv1.ClusterNamespace{
			ObjectMeta: metav1.ObjectMeta{
				Name: a.Name, Labels: map[string]string{fv1.LabelDiscovered: "true"},
				Finalizers: []string{fv1.NamespaceFinalizer},
			},
			Spec: fv1.ClusterNamespaceSpec{Workspace: a.Value},
		})
		return created, false, err
	case "deleteHub":
		if _, _, err := release(ctx, hub, cn); err != nil {
			return nil, false, err
		}
		if err := hub.clusterNamespaces.Delete(ctx, cn.Name); err != nil {
			return nil, false, err
		}
		return cn, true, nil
	case "release":
		return release(ctx, hub, cn)
	case "createMember":
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(a.Name)
		ns.SetLabels(map[string]string{fv1.LabelWorkspace: a.Value})
		_, err := members.Create(ctx, ns, metav1.CreateOptions{})
		return nil, false, err
	case "deleteMember":
		return nil, false, members.Delete(ctx, a.Name, metav1.DeleteOptions{})
	case "labelMember":
		patch := []byte(`{"metadata":{"labels":{"` + fv1.LabelWorkspace + `":"` + a.Value + `"}}}`)
		_, err := members.Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return nil, false, err
	case "status":
		// A merge patch merges maps: labels gone from the cluster are nulled.
		labels := map[string]any{}
		for k := range cn.Status.Labels {
			labels[k] = nil
		}
		for k, v := range a.Labels {
			labels[k] = v
		}
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"phase": a.Value, "labels": labels}})
		if err != nil {
			return nil, false, err
		}
		patched, err := hub.clusterNamespaces.Patch(ctx, cn.Name, patch, "status")
		return patched, false, err
	}
	return nil, false, nil
}

// release lets the hub delete cn. Without its finalizer a terminating
// object is gone.
func release(ctx context.Context, hub *hubClient, cn *fv1.ClusterNamespace) (*fv1.ClusterNamespace, bool, error) {
	if !slices.Contains(cn.Finalizers, fv1.NamespaceFinalizer) {
		return nil, false, nil
	}
	cn = cn.DeepCopy()
	cn.Finalizers = slices.DeleteFunc(cn.Finalizers, func(f string) bool { return f == fv1.NamespaceFinalizer })
	updated, err := hub.clusterNamespaces.Update(ctx, cn)
	if err != nil {
		return nil, false, err
	}
	return updated, updated.DeletionTimestamp != nil && len(updated.Finalizers) == 0, nil
}
