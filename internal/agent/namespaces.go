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

// planNamespaces compares the cluster's namespaces with the hub's
// ClusterNamespaces: every namespace of the cluster gets one (discovered
// ones in their labelled workspace or default); one created through the hub
// is created in the cluster; one deleted through the hub is deleted in the
// cluster before the hub lets it go. It is a pure function.
func planNamespaces(member []corev1.Namespace, hub []fv1.ClusterNamespace) []nsAction {
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
		case cn.DeletionTimestamp != nil && exists && ns.DeletionTimestamp == nil:
			out = append(out, nsAction{Kind: "deleteMember", Name: cn.Name})
		case cn.DeletionTimestamp != nil && !exists:
			out = append(out, nsAction{Kind: "release", Name: cn.Name})
		case cn.DeletionTimestamp != nil:
			// Terminating in the cluster: wait.
		case !exists && cn.Labels[fv1.LabelDiscovered] == "true":
			out = append(out, nsAction{Kind: "deleteHub", Name: cn.Name})
		case !exists:
			out = append(out, nsAction{Kind: "createMember", Name: cn.Name, Value: cn.Spec.Workspace})
		default:
			if ns.Labels[fv1.LabelWorkspace] != cn.Spec.Workspace {
				out = append(out, nsAction{Kind: "labelMember", Name: cn.Name, Value: cn.Spec.Workspace})
			}
			phase := "Active"
			if ns.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			if cn.Status.Phase != phase || !maps.Equal(cn.Status.Labels, ns.Labels) {
				out = append(out, nsAction{Kind: "status", Name: cn.Name, Value: phase, Labels: ns.Labels})
			}
		}
	}
	for _, ns := range member {
		if inHub[ns.Name] || ns.DeletionTimestamp != nil {
			continue
		}
		ws := ns.Labels[fv1.LabelWorkspace]
		if ws == "" {
			ws = fv1.DefaultName
		}
		out = append(out, nsAction{Kind: "createHub", Name: ns.Name, Value: ws})
	}
	return out
}

// syncNamespaces carries out the plan for the current state, as the caches
// hold it; writes go to the cluster and the hub.
func syncNamespaces(ctx context.Context, members corelisters.NamespaceLister, onHub []fv1.ClusterNamespace, cluster dynamic.Interface, hub *hubClient) error {
	cached, err := members.List(labels.Everything())
	if err != nil {
		return err
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
	for _, a := range planNamespaces(member, onHub) {
		if err := apply(ctx, cluster, hub, a, byName[a.Name]); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func apply(ctx context.Context, cluster dynamic.Interface, hub *hubClient, a nsAction, cn *fv1.ClusterNamespace) error {
	members := cluster.Resource(namespacesResource)
	switch a.Kind {
	case "createHub":
		_, err := hub.clusterNamespaces.Create(ctx, &fv1.ClusterNamespace{
			ObjectMeta: metav1.ObjectMeta{
				Name: a.Name, Labels: map[string]string{fv1.LabelDiscovered: "true"},
				Finalizers: []string{fv1.NamespaceFinalizer},
			},
			Spec: fv1.ClusterNamespaceSpec{Workspace: a.Value},
		})
		return err
	case "deleteHub":
		if err := release(ctx, hub, cn); err != nil {
			return err
		}
		return hub.clusterNamespaces.Delete(ctx, cn.Name)
	case "release":
		return release(ctx, hub, cn)
	case "createMember":
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(a.Name)
		ns.SetLabels(map[string]string{fv1.LabelWorkspace: a.Value})
		_, err := members.Create(ctx, ns, metav1.CreateOptions{})
		return err
	case "deleteMember":
		return members.Delete(ctx, a.Name, metav1.DeleteOptions{})
	case "labelMember":
		patch := []byte(`{"metadata":{"labels":{"` + fv1.LabelWorkspace + `":"` + a.Value + `"}}}`)
		_, err := members.Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
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
			return err
		}
		_, err = hub.clusterNamespaces.Patch(ctx, cn.Name, patch, "status")
		return err
	}
	return nil
}

func release(ctx context.Context, hub *hubClient, cn *fv1.ClusterNamespace) error {
	if !slices.Contains(cn.Finalizers, fv1.NamespaceFinalizer) {
		return nil
	}
	cn.Finalizers = slices.DeleteFunc(cn.Finalizers, func(f string) bool { return f == fv1.NamespaceFinalizer })
	_, err := hub.clusterNamespaces.Update(ctx, cn)
	return err
}
