package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/registration"
)

// ClusterReconciler prepares the hub side of each attached cluster: its
// namespace and its agent's RBAC; it expires unused
// bootstrap credentials and, on detach, removes everything once the agent has
// cleaned up the cluster (or at once with force).
type ClusterReconciler struct {
	Client client.Client

	// prepared remembers (by UID) the clusters whose hub side this process
	// has created, so status-only reconciles cost no API calls; a restarted
	// hub checks each cluster once.
	prepared sync.Map
}

// tokenIndex indexes bootstrap token Secrets by the cluster they attach.
const tokenIndex = "cluster"

// SetupWithManager registers the reconciler.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Only a group's coming and going changes its members' conditions, not
	// its status (which changes with every member).
	groupLifecycle := predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
	// Every reconcile looks up its cluster's tokens: by index, not by
	// matching labels across every cluster's token.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Secret{}, tokenIndex, func(o client.Object) []string {
		if name := tokenOf(o); name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fv1.Cluster{}).
		Watches(&fv1.ClusterGroup{}, handler.EnqueueRequestsFromMapFunc(r.groupMembers), builder.WithPredicates(groupLifecycle)).
		// A bootstrap token may reach the cache after its Cluster did, and
		// spending it brings its expiry forward: either schedules the
		// expiry check.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(tokenCluster), builder.WithPredicates(tokenExpiry)).
		// A new cluster's agent waits on its hub side; attaching many at once
		// is mostly waiting on the apiserver.
		// Failures back off per cluster only: the default's shared
		// budget of 10 retries a second held a registering fleet's
		// clusters back.
		WithOptions(controller.Options{MaxConcurrentReconciles: 16, RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, 10*time.Second)}).
		Complete(r)
}

var tokenExpiry = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*corev1.Secret)
		cur, okNew := e.ObjectNew.(*corev1.Secret)
		return okOld && okNew && string(old.Data[bootstrapapi.BootstrapTokenExpirationKey]) != string(cur.Data[bootstrapapi.BootstrapTokenExpirationKey])
	},
	DeleteFunc: func(event.DeleteEvent) bool { return false },
}

// tokenOf names the cluster a bootstrap token Secret attaches, or "".
func tokenOf(o client.Object) string {
	if o.GetNamespace() != metav1.NamespaceSystem {
		return ""
	}
	return o.GetLabels()[fv1.LabelCluster]
}

func tokenCluster(_ context.Context, o client.Object) []reconcile.Request {
	if name := tokenOf(o); name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}

func (r *ClusterReconciler) groupMembers(ctx context.Context, o client.Object) []reconcile.Request {
	var list fv1.ClusterList
	if err := r.Client.List(ctx, &list, client.MatchingFields{groupIndex: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
	}
	return reqs
}

// Reconcile brings one cluster's hub side to what it should be.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c fv1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.DeletionTimestamp != nil {
		return r.detach(ctx, &c)
	}
	if controllerutil.AddFinalizer(&c, fv1.DetachFinalizer) {
		if err := r.Client.Update(ctx, &c); err != nil {
			return ctrl.Result{}, ignoreConflict(err)
		}
	}
	if _, done := r.prepared.Load(c.UID); !done {
		if err := r.ensureHubSide(ctx, &c); err != nil {
			return ctrl.Result{}, err
		}
		r.prepared.Store(c.UID, true)
	}
	before := c.DeepCopy()
	requeue, expired, err := r.expireTokens(ctx, &c)
	if err != nil {
		return ctrl.Result{}, err
	}
	initStatus(&c)
	if err := r.groupCondition(ctx, &c); err != nil {
		return ctrl.Result{}, err
	}
	c.Status.Namespace = fv1.HubNamespace(c.Name)
	c.Status.ObservedGeneration = c.Generation
	// Heartbeat status writes bring every cluster here; most change nothing
	// this reconciler owns, and an empty patch is still a request.
	if !equality.Semantic.DeepEqual(before.Status, c.Status) {
		// On the Cluster as read: conditions are one list, which a patch
		// laid over a stale copy would replace, dropping what the tracker
		// or the certificate reviewer set meanwhile.
		if err := r.Client.Status().Patch(ctx, &c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, ignoreConflict(err)
		}
	}
	// Only once the conditions say why: a token deleted first would leave
	// nothing to tell that the credential expired.
	for _, s := range expired {
		if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// initStatus reports Unknown until the agent first reports.
func initStatus(c *fv1.Cluster) {
	if c.Status.Health == "" {
		c.Status.Health = fv1.HealthUnknown
	}
	if meta.FindStatusCondition(c.Status.Conditions, fv1.ClusterConditionAgentConnected) == nil {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
			Type: fv1.ClusterConditionAgentConnected, Status: metav1.ConditionUnknown,
			Reason: "AwaitingAgent", Message: "the cluster's agent has not reported yet",
		})
	}
}

func (r *ClusterReconciler) groupCondition(ctx context.Context, c *fv1.Cluster) error {
	ready := metav1.Condition{Type: fv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "GroupFound", Message: "member of cluster group " + c.Spec.Group, ObservedGeneration: c.Generation}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: c.Spec.Group}, &fv1.ClusterGroup{}); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		ready.Status, ready.Reason = metav1.ConditionFalse, "GroupNotFound"
		ready.Message = "cluster group " + c.Spec.Group + " does not exist; create it or move the cluster to another group"
	}
	meta.SetStatusCondition(&c.Status.Conditions, ready)
	return nil
}

// ensureHubSide creates the cluster's namespace and binds its agent there to
// the hub's agent role. The agent gets no rules
// on Cluster objects: it writes its Cluster's status through its stream, and
// a ClusterRoleBinding per cluster would slow every request's RBAC check as
// the fleet grows.
//
// The binding's subject is the attach's group (fv1.AttachGroup of the
// Cluster's UID), not the agent's user name, so a certificate of an earlier
// attach of the same name reads nothing here. A binding an earlier version
// made for the user name is kept as it was, and the Cluster marked as one
// whose agent holds a name-only identity.
func (r *ClusterReconciler) ensureHubSide(ctx context.Context, c *fv1.Cluster) error {
	ns := fv1.HubNamespace(c.Name)
	var existing corev1.Namespace
	err := r.Client.Get(ctx, client.ObjectKey{Name: ns}, &existing)
	if err == nil && existing.DeletionTimestamp != nil {
		// What an earlier attach left must be gone before this one's
		// namespace is made; its deletion brings us back.
		return fmt.Errorf("namespace %s of an earlier attach of cluster %s is still being deleted; waiting", ns, c.Name)
	}
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	// What the cache already holds is not created again: a restarted hub
	// comes here once for every cluster, and two refused creates each
	// were 20,000 requests at 10,000 clusters.
	labels := map[string]string{fv1.LabelCluster: c.Name}
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	group := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fv1.AttachGroup(string(c.UID))}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: agentBinding, Namespace: ns, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fv1.AgentNamespaceRole},
		Subjects:   []rbacv1.Subject{group},
	}
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(binding), binding)
	if apierrors.IsNotFound(err) {
		err = r.Client.Create(ctx, binding)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("creating the agent's RoleBinding in %s: %w", ns, err)
			}
			return nil
		}
		err = r.Client.Get(ctx, client.ObjectKeyFromObject(binding), binding)
	}
	if err != nil {
		return err
	}
	user := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fv1.AgentUser(c.Name)}
	switch {
	case slices.Contains(binding.Subjects, group):
		return nil
	case !slices.Contains(binding.Subjects, user):
		// Bound to no one this attach knows: bind it to this attach.
		binding.Subjects = []rbacv1.Subject{group}
		return r.Client.Update(ctx, binding)
	}
	// An earlier version's binding: its agent's certificate names no attach.
	if c.Annotations[fv1.AnnotationNameOnlyIdentity] != "true" {
		patch := client.MergeFrom(c.DeepCopy())
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[fv1.AnnotationNameOnlyIdentity] = "true"
		if err := r.Client.Patch(ctx, c, patch); err != nil {
			return err
		}
	}
	return nil
}

// agentBinding names the RoleBinding of a cluster's agent in its hub namespace.
const agentBinding = "flotilla-agent"

// expireTokens finds c's expired bootstrap tokens, to be deleted, and if none
// was used says so in c's conditions. It returns when to look again.
func (r *ClusterReconciler) expireTokens(ctx context.Context, c *fv1.Cluster) (next time.Duration, expired []*corev1.Secret, err error) {
	var secrets corev1.SecretList
	if err := r.Client.List(ctx, &secrets, client.MatchingFields{tokenIndex: c.Name}); err != nil {
		return 0, nil, err
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		exp, err := registration.Expiry(s)
		if err != nil {
			continue
		}
		if left := time.Until(exp); left > 0 {
			if next == 0 || left < next {
				next = left + time.Second
			}
			continue
		}
		if s.Labels[registration.LabelUsed] != "true" && !meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionRegistered) {
			meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
				Type: fv1.ClusterConditionRegistered, Status: metav1.ConditionFalse, Reason: "BootstrapExpired",
				Message: "the bootstrap credential expired at " + exp.Format(time.RFC3339) + " before an agent registered; detach with --force and attach again",
			})
		}
		expired = append(expired, s)
	}
	return next, expired, nil
}

// detach finishes a cluster's removal once its agent has cleaned up, when it
// never registered, or when forced.
func (r *ClusterReconciler) detach(ctx context.Context, c *fv1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, fv1.DetachFinalizer) {
		return ctrl.Result{}, nil
	}
	done := c.Annotations[fv1.AnnotationForceDetach] == "true" ||
		meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionDetached) ||
		!meta.IsStatusConditionTrue(c.Status.Conditions, fv1.ClusterConditionRegistered)
	if !done {
		return ctrl.Result{}, nil // the agent's status update brings us back
	}
	labels := client.MatchingLabels{fv1.LabelCluster: c.Name}
	// Without an agent nobody finishes these; let the namespace go.
	var nss fv1.ClusterNamespaceList
	if err := r.Client.List(ctx, &nss, client.InNamespace(fv1.HubNamespace(c.Name))); err != nil {
		return ctrl.Result{}, err
	}
	for i := range nss.Items {
		n := &nss.Items[i]
		if controllerutil.RemoveFinalizer(n, fv1.NamespaceFinalizer) {
			if err := r.Client.Update(ctx, n); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
		}
	}
	// The ClusterRole and its binding are what earlier versions granted agents.
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fv1.HubNamespace(c.Name)}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fv1.AgentUser(c.Name)}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fv1.AgentUser(c.Name)}},
	} {
		if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(metav1.NamespaceSystem), labels); err != nil {
		return ctrl.Result{}, err
	}
	controllerutil.RemoveFinalizer(c, fv1.DetachFinalizer)
	r.prepared.Delete(c.UID)
	return ctrl.Result{}, r.Client.Update(ctx, c)
}

// ignoreConflict drops a conflict on writing a Cluster read from the cache:
// a newer Cluster is on its way to the cache, and its update brings the
// cluster back here. No retry, and no error to log: 12,000 lines while
// 10,000 clusters registered.
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
