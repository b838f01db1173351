// Package lifecycle makes, scales, upgrades and deletes the clusters whose
// Cluster has spec.lifecycle: one reconciler drives each such cluster
// towards its spec through its provider, one step per pass, keeping every
// step's progress where a restarted hub finds it (the provider's state and
// the cluster's own API), so an interrupted operation resumes.
//
// Upgrades go as Kubernetes' own do: the control plane first, one member
// at a time on the same etcd data, then the nodes one at a time: cordon,
// drain through the Eviction API (PodDisruptionBudgets respected: a
// blocked drain waits and says which budget blocks it), new version,
// uncordon. Scaling down cordons the nodes it removes first, then drains
// them the same way.
package lifecycle

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/provider/local"
)

// Reconciler drives provisioned clusters.
type Reconciler struct {
	Client client.Client
	// Local is the local provider.
	Local *local.Provider
	// ClusterAPI is the Cluster API provider; nil where none is set up.
	ClusterAPI Provisioner
	// Hub is how a provisioned cluster's agent reaches the hub (address
	// and CA); it registers with a bootstrap credential the reconciler
	// issues.
	Hub *rest.Config
	// AgentArgs are extra flags of the agents of local clusters.
	AgentArgs []string
	// Namespace on the hub holds each cluster's admin kubeconfig, in the
	// Secret KubeconfigSecret(cluster).
	Namespace string

	mu        sync.Mutex
	members   map[string]*kubernetes.Clientset // by cluster
	published map[string]string                // kubeconfig hash, by cluster
}

// busy is how soon a cluster in the middle of an operation is looked at
// again; idle is how often a Ready one is (a supervisor that died is
// started again).
const (
	busy = 500 * time.Millisecond
	idle = 10 * time.Second
)

// SetupWithManager registers the reconciler for Clusters with a lifecycle.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	provisioned := predicate.NewPredicateFuncs(func(o client.Object) bool {
		c, ok := o.(*fv1.Cluster)
		return ok && c.Spec.Lifecycle != nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("lifecycle").
		For(&fv1.Cluster{}, builder.WithPredicates(provisioned, predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// Reconcile takes the next step for one cluster.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.Spec.Lifecycle == nil {
		return ctrl.Result{}, nil
	}
	if c.DeletionTimestamp != nil {
		// Requeued: a provider may take a while to delete.
		return ctrl.Result{RequeueAfter: busy}, r.delete(ctx, &c)
	}
	if controllerutil.AddFinalizer(&c, fv1.LifecycleFinalizer) {
		if err := r.Client.Update(ctx, &c); err != nil {
			return ctrl.Result{}, err
		}
	}
	st, err := r.step(ctx, &c)
	observed := true
	if err != nil {
		// A step that failed is tried again; the status says why meanwhile.
		st, observed = stepError(c.Status.Lifecycle, st, err)
	}
	if err := r.writeStatus(ctx, &c, st, observed); err != nil {
		return ctrl.Result{}, err
	}
	if st.Phase == fv1.LifecycleReady {
		return ctrl.Result{RequeueAfter: idle}, nil
	}
	return ctrl.Result{RequeueAfter: busy}, nil
}

// step takes the next step with the cluster's provider.
func (r *Reconciler) step(ctx context.Context, c *fv1.Cluster) (fv1.LifecycleStatus, error) {
	switch p := c.Spec.Lifecycle.Provider; {
	case p == fv1.ProviderLocal:
		return r.local(ctx, c)
	case p == fv1.ProviderClusterAPI && r.ClusterAPI != nil:
		res, err := r.ClusterAPI.Reconcile(ctx, c)
		if err == nil && len(res.Kubeconfig) > 0 {
			err = r.publish(ctx, c.Name, res.Kubeconfig)
		}
		return res.Status, err
	default:
		return fv1.LifecycleStatus{}, fmt.Errorf("this hub has no %s provider", p)
	}
}

// stepError is the status of a step that failed: what the step found, or
// if it found nothing the last status, not observed anew (so that nobody
// takes an old Ready for the new spec's), saying why it failed.
func stepError(last *fv1.LifecycleStatus, found fv1.LifecycleStatus, err error) (fv1.LifecycleStatus, bool) {
	st, observed := found, true
	if st.Phase == "" {
		st, observed = fv1.LifecycleStatus{Phase: fv1.LifecycleProvisioning}, false
		if last != nil {
			st = *last.DeepCopy()
		}
	}
	st.Conditions = nil
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(st.Phase), Message: truncate(err.Error())})
	return st, observed
}

// writeStatus patches status.lifecycle when it changed; observed says it
// describes the current spec.
func (r *Reconciler) writeStatus(ctx context.Context, c *fv1.Cluster, st fv1.LifecycleStatus, observed bool) error {
	if observed {
		st.ObservedGeneration = c.Generation
	}
	if len(st.Conditions) == 0 {
		status, msg := metav1.ConditionFalse, st.Progress
		if st.Phase == fv1.LifecycleReady {
			status, msg = metav1.ConditionTrue, "the cluster runs as its spec says"
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: status, Reason: string(st.Phase), Message: truncate(msg)})
	}
	if old := c.Status.Lifecycle; old != nil {
		// Keep transition times of conditions that did not change.
		for i := range st.Conditions {
			if prev := meta.FindStatusCondition(old.Conditions, st.Conditions[i].Type); prev != nil && prev.Status == st.Conditions[i].Status {
				st.Conditions[i].LastTransitionTime = prev.LastTransitionTime
			}
		}
		if equality.Semantic.DeepEqual(*old, st) {
			return nil
		}
	}
	for i := range st.Conditions {
		st.Conditions[i].ObservedGeneration = c.Generation
		if st.Conditions[i].LastTransitionTime.IsZero() {
			st.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	before := c.DeepCopy()
	c.Status.Lifecycle = &st
	err := r.Client.Status().Patch(ctx, c, client.MergeFrom(before))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// delete tears the cluster down, then lets the hub forget it: the agent
// goes with its cluster, so the hub does not wait for its cleanup.
func (r *Reconciler) delete(ctx context.Context, c *fv1.Cluster) error {
	if !controllerutil.ContainsFinalizer(c, fv1.LifecycleFinalizer) {
		return nil
	}
	_ = r.writeStatus(ctx, c, fv1.LifecycleStatus{Phase: fv1.LifecycleDeleting, Progress: "stopping the cluster and removing its data"}, true)
	switch c.Spec.Lifecycle.Provider {
	case fv1.ProviderClusterAPI:
		if r.ClusterAPI == nil {
			return fmt.Errorf("this hub has no %s provider to delete cluster %s with", fv1.ProviderClusterAPI, c.Name)
		}
		gone, err := r.ClusterAPI.Delete(ctx, c)
		if err != nil || !gone {
			return err // looked at again while Cluster API deletes it
		}
	default:
		if err := r.Local.Delete(c.Name); err != nil {
			return fmt.Errorf("deleting cluster %s: %w", c.Name, err)
		}
	}
	r.forget(c.Name)
	kc := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: KubeconfigSecret(c.Name), Namespace: r.Namespace}}
	if err := r.Client.Delete(ctx, kc); client.IgnoreNotFound(err) != nil {
		return err
	}
	before := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[fv1.AnnotationForceDetach] = "true"
	controllerutil.RemoveFinalizer(c, fv1.LifecycleFinalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, c, client.MergeFrom(before)))
}

// member is a client of cluster's apiserver with admin rights.
func (r *Reconciler) member(cluster string) (*kubernetes.Clientset, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cs := r.members[cluster]; cs != nil {
		return cs, nil
	}
	cfg, err := r.Local.AdminConfig(cluster)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if r.members == nil {
		r.members = map[string]*kubernetes.Clientset{}
	}
	r.members[cluster] = cs
	return cs, nil
}

func (r *Reconciler) forget(cluster string) {
	r.mu.Lock()
	delete(r.members, cluster)
	delete(r.published, cluster)
	r.mu.Unlock()
}

// KubeconfigSecret names the hub Secret that holds cluster's admin
// kubeconfig (key "value", as Cluster API names it).
func KubeconfigSecret(cluster string) string { return cluster + "-kubeconfig" }

// publish keeps cluster's admin kubeconfig in its hub Secret, for
// 'flotilla cluster kubeconfig' and whoever the hub's RBAC lets read it.
func (r *Reconciler) publish(ctx context.Context, cluster string, kubeconfig []byte) error {
	sum := fmt.Sprintf("%x", sha256.Sum256(kubeconfig))
	r.mu.Lock()
	done := r.published[cluster] == sum
	r.mu.Unlock()
	if done {
		return nil
	}
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: KubeconfigSecret(cluster), Namespace: r.Namespace, Labels: map[string]string{KubeconfigLabel: cluster}},
		Type:       "cluster.x-k8s.io/secret",
		Data:       map[string][]byte{"value": kubeconfig},
	}
	if err := r.Client.Patch(ctx, s, client.Apply, client.FieldOwner("flotilla-lifecycle"), client.ForceOwnership); err != nil {
		return fmt.Errorf("publishing the kubeconfig of %s: %w", cluster, err)
	}
	r.mu.Lock()
	if r.published == nil {
		r.published = map[string]string{}
	}
	r.published[cluster] = sum
	r.mu.Unlock()
	return nil
}

// KubeconfigLabel marks a Secret holding the admin kubeconfig of the
// cluster it names.
const KubeconfigLabel = "flotilla.dev/kubeconfig-of"

func truncate(s string) string {
	if len(s) > 1000 {
		return s[:1000] + "…"
	}
	return s
}
