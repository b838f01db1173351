package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/metrics"
	"flotilla.dev/flotilla/internal/policy"
)

// fieldManager owns every field Flotilla applies in a member cluster.
const fieldManager = "flotilla-policy"

// annotationPodSecurity marks namespaces whose Pod Security labels Flotilla sets.
const annotationPodSecurity = "flotilla.dev/pod-security"

// owned are the kinds policies render to, with whether they are namespaced.
var owned = map[schema.GroupVersionResource]bool{
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}:                         true,
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}:                  false,
	{Version: "v1", Resource: "resourcequotas"}:                                                           true,
	{Version: "v1", Resource: "limitranges"}:                                                              true,
	{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}:                              true,
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}:       false,
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}: false,
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingadmissionpolicies"}:         false,
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingadmissionpolicybindings"}:   false,
}

var (
	quotas = schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}
	vaps   = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
)

var resourceOf = map[string]string{
	"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings", "ResourceQuota": "resourcequotas", "LimitRange": "limitranges",
	"NetworkPolicy": "networkpolicies", "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
	"ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings", "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
	"MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
}

func gvrOf(u *unstructured.Unstructured) schema.GroupVersionResource {
	gvk := u.GroupVersionKind()
	return schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resourceOf[gvk.Kind]}
}

// startPolicySync applies the cluster's desired policies whenever they change
// on the hub or an owned object changes in the cluster (drift).
// nsInf is the agent's namespace informer, which the caller runs: Pod
// Security labels are read from it, and set again when they drift.
func (a *agent) startPolicySync(ctx context.Context, out *outbox, state *hubState, nsInf toolscache.SharedIndexInformer) (pods toolscache.SharedIndexInformer, err error) {
	t := newTrigger()
	handler := t.handler()
	state.onChange = append(state.onChange, t.poke)

	// One informer per kind, made on first use, of the objects Flotilla owns.
	informers := map[schema.GroupVersionResource]toolscache.SharedIndexInformer{}
	informer := func(gvr schema.GroupVersionResource) toolscache.SharedIndexInformer {
		if informers[gvr] == nil {
			informers[gvr] = informerOf(a.dyn, gvr, a.dyn.Resource(gvr), &unstructured.Unstructured{}, policy.OwnedLabel+"=true")
		}
		return informers[gvr]
	}
	sy := &syncer{dyn: a.dyn, stores: map[schema.GroupVersionResource]toolscache.Store{}, last: map[string]appliedObject{},
		namespaces: corelisters.NewNamespaceLister(nsInf.GetIndexer())}
	if _, err := nsInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { t.poke() },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Namespace)
			c, ok2 := cur.(*corev1.Namespace)
			if !ok1 || !ok2 || labelsDrifted(o, c) {
				t.poke()
			}
		},
	}); err != nil {
		return nil, err
	}
	if a.clusterCfg != nil {
		if sy.kinds, err = newKindMapper(a.clusterCfg); err != nil {
			return nil, err
		}
	}
	// A read-only agent watches nothing of what policies own: it applies
	// none, and its grant may not cover those kinds.
	served := map[schema.GroupVersionResource]bool{}
	if !a.c.ReadOnly {
		if served, err = a.servedKinds(ctx); err != nil {
			return nil, err
		}
	}
	for gvr := range served {
		if !served[gvr] {
			klog.InfoS("the cluster does not serve a kind policies use; those policies will report sync errors", "resource", gvr.String())
			continue
		}
		inf := informer(gvr)
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, err
		}
		sy.stores[gvr] = inf.GetStore()
	}

	var rep *reporter
	if a.clusterCfg != nil {
		var quotaInf toolscache.SharedIndexInformer
		var vapStore toolscache.Store
		if !a.c.ReadOnly {
			quotaInf, vapStore = informer(quotas), informer(vaps).GetStore()
		}
		if rep, err = newReporter(ctx, a.current().Cluster, out.put, a.clusterCfg, quotaInf, vapStore); err != nil {
			return nil, err
		}
		pods = rep.pods
	}
	for _, inf := range informers {
		go inf.RunWithContext(ctx)
	}

	go t.run(ctx, "policy sync", func(ctx context.Context) error {
		for gvr, inf := range informers {
			if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				return fmt.Errorf("cannot watch %s in the cluster", gvr.Resource)
			}
		}
		if !toolscache.WaitForCacheSync(ctx.Done(), nsInf.HasSynced) {
			return fmt.Errorf("cannot watch namespaces in the cluster")
		}
		desired, _ := state.desiredPolicies()
		if desired == nil {
			return nil // not pushed yet; the push pokes
		}
		ne, err := a.notEnforced(desired.Data)
		if err != nil {
			return err
		}
		if ne != nil {
			// Nothing is applied, nor removed: a read-only cluster
			// holds nothing of Flotilla's.
			if rep != nil {
				rep.synced(desired.Digest, &applied{readOnly: true, notEnforced: ne.Insights()}, nil)
			}
			return nil
		}
		res, err := sy.apply(ctx, desired.Data)
		if res != nil && len(res.notices) > 0 {
			// A kind not served today may be tomorrow, once its CRD is installed.
			time.AfterFunc(kindRetry, t.poke)
		}
		if res != nil && rep != nil {
			audits, aerr := policy.DecodeAudits(desired.Data)
			if aerr != nil {
				return fmt.Errorf("desired policies from the hub are unreadable: %w", aerr)
			}
			rep.synced(desired.Digest, res, audits)
		}
		return err
	})
	return pods, nil
}

// kindRetry is how often kinds a cluster does not serve are looked up again.
const kindRetry = 30 * time.Second

// applied is the outcome of one sync.
type applied struct {
	objects  int
	security map[string]policy.NamespaceSecurity
	errs     []fv1.Insight                 // what could not be applied or removed
	notices  []fv1.Insight                 // kinds policies match that the cluster does not serve
	governed []schema.GroupVersionResource // what admission policies judge, subresources aside
	// readOnly: nothing was applied, the cluster being attached read-only;
	// notEnforced then says so of each policy that applies.
	readOnly    bool
	notEnforced []fv1.Insight
}

func (r *applied) fail(u *unstructured.Unstructured, err error) {
	r.errs = append(r.errs, fv1.Insight{
		Policy: u.GetLabels()[policy.PolicyLabel], Type: fv1.PolicyType(u.GetLabels()[policy.PolicyTypeLabel]), Kind: fv1.InsightSyncError,
		Namespace: u.GetNamespace(), Object: u.GetKind() + "/" + u.GetName(), Message: err.Error(),
	})
}

// servedKinds reports which owned kinds the cluster serves: mutation
// policies need Kubernetes 1.36 or later, and the rest must not wait on them.
// Simulated clusters serve everything.
func (a *agent) servedKinds(ctx context.Context) (map[schema.GroupVersionResource]bool, error) {
	out := map[schema.GroupVersionResource]bool{}
	for gvr := range owned {
		out[gvr] = a.clusterCfg == nil
	}
	if a.clusterCfg == nil {
		return out, nil
	}
	groupVersions := map[schema.GroupVersion]bool{}
	for gvr := range owned {
		groupVersions[gvr.GroupVersion()] = true
	}
	for gv := range groupVersions {
		list, err := serverResources(ctx, a.server, gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discover the cluster's %s resources: %w", gv, err)
		}
		for _, r := range list.APIResources {
			if _, ok := owned[gv.WithResource(r.Name)]; ok {
				out[gv.WithResource(r.Name)] = true
			}
		}
	}
	return out, nil
}

// syncer makes the cluster hold what the hub desires. It remembers what it
// applied and the resource version that came back, so a sync after one
// object drifted re-applies that object only: any change by anyone moves the
// resource version the informers hold.
type syncer struct {
	kinds      *kindMapper // nil for simulated clusters, whose kinds are the hub's guesses
	dyn        dynamic.Interface
	stores     map[schema.GroupVersionResource]toolscache.Store // owned objects in the cluster
	namespaces corelisters.NamespaceLister
	last       map[string]appliedObject // by objectKey
}

type appliedObject struct {
	desired         string // the object as last applied, JSON
	resourceVersion string
}

func objectKey(gvr schema.GroupVersionResource, namespace, name string) string {
	return gvr.String() + "/" + namespace + "/" + name
}

// upToDate reports whether the cluster still holds u exactly as last applied.
func (s *syncer) upToDate(key string, gvr schema.GroupVersionResource, u *unstructured.Unstructured, desired string) bool {
	last, ok := s.last[key]
	if !ok || last.desired != desired {
		return false
	}
	storeKey := u.GetName()
	if u.GetNamespace() != "" {
		storeKey = u.GetNamespace() + "/" + storeKey
	}
	cur, exists, err := s.stores[gvr].GetByKey(storeKey)
	if err != nil || !exists {
		return false
	}
	obj, ok := cur.(*unstructured.Unstructured)
	return ok && obj.GetResourceVersion() == last.resourceVersion
}

// apply makes the cluster hold exactly what data describes: it applies
// desired objects, deletes owned ones no longer desired and sets Pod
// Security labels, all at once. One object failing does not hold up the
// others; every failure is reported. It returns nil only when data cannot be
// read.
func (s *syncer) apply(ctx context.Context, data map[string]string) (*applied, error) {
	objs, podSecurity, err := policy.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("desired policies from the hub are unreadable: %w", err)
	}
	res := &applied{security: podSecurity}
	want := map[string]bool{}
	if s.kinds != nil {
		s.kinds.fresh()
	}
	governed := map[schema.GroupVersionResource]bool{}
	var todo []pending
	for _, u := range objs {
		gvr := gvrOf(u)
		if s.kinds != nil && !s.resolveKinds(u, res, governed) {
			continue // matches nothing here: not applied, and removed if it was
		}
		key := objectKey(gvr, u.GetNamespace(), u.GetName())
		want[key] = true
		raw, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		if s.upToDate(key, gvr, u, string(raw)) {
			res.objects++
			continue
		}
		if _, served := s.stores[gvr]; !served {
			res.fail(u, fmt.Errorf("the cluster does not serve %s; upgrade it (mutation policies need Kubernetes 1.36 or later)", gvr.GroupResource()))
			continue
		}
		todo = append(todo, pending{key: key, gvr: gvr, u: u, raw: string(raw)})
	}
	stale := s.stale(want)
	patches, err := labelPatches(s.namespaces, podSecurity)
	if err != nil {
		return nil, err
	}
	applyErrs, deleteErrs, labelErrs := s.write(ctx, todo, stale, patches)
	for i, err := range applyErrs {
		if err != nil {
			delete(s.last, todo[i].key)
			res.fail(todo[i].u, err)
			continue
		}
		res.objects++
	}
	for i, err := range deleteErrs {
		if err != nil {
			res.fail(stale[i].u, fmt.Errorf("remove: %w", err))
		}
	}
	for key := range s.last {
		if !want[key] {
			delete(s.last, key)
		}
	}
	for gvr := range governed {
		res.governed = append(res.governed, gvr)
	}
	if err := errors.Join(labelErrs...); err != nil {
		res.errs = append(res.errs, fv1.Insight{Type: fv1.PolicySecurity, Kind: fv1.InsightSyncError, Message: "set Pod Security labels: " + err.Error()})
	}
	if len(res.errs) > 0 {
		return res, fmt.Errorf("%d policy objects not applied; first: %s %s", len(res.errs), res.errs[0].Object, res.errs[0].Message)
	}
	return res, nil
}

// ownedObject is an object Flotilla placed in the cluster.
type ownedObject struct {
	gvr schema.GroupVersionResource
	u   *unstructured.Unstructured
}

// stale lists the owned objects in the cluster that want does not hold.
func (s *syncer) stale(want map[string]bool) []ownedObject {
	var out []ownedObject
	for gvr, store := range s.stores {
		for _, o := range store.List() {
			u, ok := o.(*unstructured.Unstructured)
			if ok && !want[objectKey(gvr, u.GetNamespace(), u.GetName())] {
				out = append(out, ownedObject{gvr: gvr, u: u})
			}
		}
	}
	return out
}

// resource reaches gvr's objects, in namespace if the kind is namespaced.
func (s *syncer) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if owned[gvr] {
		return s.dyn.Resource(gvr).Namespace(namespace)
	}
	return s.dyn.Resource(gvr)
}

// pending is an object to apply.
type pending struct {
	key string
	gvr schema.GroupVersionResource
	u   *unstructured.Unstructured
	raw string // u as JSON
}

// writeParallel bounds the writes in flight to the member's apiserver.
const writeParallel = 8

// write applies todo, deletes stale and patches namespaces' labels, all at
// once, up to writeParallel in flight, and records what was applied: a
// change reaches the cluster in one round trip rather than one per object,
// and a policy created as another is deleted does not wait for the delete.
// Order does not matter: a binding whose policy or role is not there yet
// binds nothing until it is (Flotilla's admission policies take no
// parameters), and every object lands in a namespace that exists.
func (s *syncer) write(ctx context.Context, todo []pending, stale []ownedObject, patches []labelPatch) (applyErrs, deleteErrs, labelErrs []error) {
	applyErrs, deleteErrs, labelErrs = make([]error, len(todo)), make([]error, len(stale)), make([]error, len(patches))
	rvs := make([]string, len(todo))
	sem := make(chan struct{}, writeParallel)
	var wg sync.WaitGroup
	do := func(f func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f()
		}()
	}
	for i, p := range todo {
		do(func() {
			out, err := s.resource(p.gvr, p.u.GetNamespace()).Apply(ctx, p.u.GetName(), p.u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
			metrics.Applied(p.u.GetLabels()[policy.PolicyTypeLabel], err)
			if applyErrs[i] = err; err == nil {
				rvs[i] = out.GetResourceVersion()
			}
		})
	}
	for i, o := range stale {
		do(func() {
			err := s.resource(o.gvr, o.u.GetNamespace()).Delete(ctx, o.u.GetName(), metav1.DeleteOptions{})
			if !apierrors.IsNotFound(err) {
				deleteErrs[i] = err
			}
		})
	}
	for i, p := range patches {
		do(func() {
			_, err := s.dyn.Resource(namespacesResource).Patch(ctx, p.namespace, types.MergePatchType, p.patch, metav1.PatchOptions{})
			if !apierrors.IsNotFound(err) {
				labelErrs[i] = err
			}
		})
	}
	wg.Wait()
	for i, p := range todo {
		if applyErrs[i] == nil {
			s.last[p.key] = appliedObject{desired: p.raw, resourceVersion: rvs[i]}
		}
	}
	return applyErrs, deleteErrs, labelErrs
}

var psaLabels = []string{"pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/audit", "pod-security.kubernetes.io/warn"}

// labelPatch is a merge patch of one namespace's Pod Security labels.
type labelPatch struct {
	namespace string
	patch     []byte
}

// labelPatches returns the patches that set the desired Pod Security labels
// and remove them from namespaces Flotilla labelled before and no longer
// governs. It reads the namespaces from the agent's informer: a sync pass
// asks the apiserver nothing it does not write.
func labelPatches(namespaces corelisters.NamespaceLister, want map[string]policy.NamespaceSecurity) ([]labelPatch, error) {
	nss, err := namespaces.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []labelPatch
	for _, ns := range nss {
		desired, governed := want[ns.Name]
		managed := ns.Annotations[annotationPodSecurity] == "true"
		set := map[string]any{}
		for _, l := range psaLabels {
			v, ok := desired.Labels[l]
			switch {
			case ok && ns.Labels[l] != v:
				set[l] = v
			case !ok && managed && ns.Labels[l] != "":
				set[l] = nil
			}
		}
		if len(set) == 0 && governed == managed {
			continue
		}
		var ann any = "true"
		if !governed {
			ann = nil
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": set, "annotations": map[string]any{annotationPodSecurity: ann}}})
		out = append(out, labelPatch{namespace: ns.Name, patch: patch})
	}
	return out, nil
}

// labelsDrifted reports whether a namespace's update may need labelPatches:
// its Pod Security labels or Flotilla's mark on it changed.
func labelsDrifted(old, cur *corev1.Namespace) bool {
	if old.Annotations[annotationPodSecurity] != cur.Annotations[annotationPodSecurity] {
		return true
	}
	for _, l := range psaLabels {
		if old.Labels[l] != cur.Labels[l] {
			return true
		}
	}
	return false
}
