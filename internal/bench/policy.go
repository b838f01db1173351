package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/policy"
)

// Policy starts a hub and n local clusters, attaches each with an agent
// process, and measures, runs times each:
//   - policy create → enforced: from creating a policy on the hub until
//     every member's own apiserver enforces it (polled every 10 ms): an
//     image-registry policy (a dry-run pod it forbids is rejected) and an
//     access policy (a SubjectAccessReview for its user is allowed);
//   - drift restore: from deleting a Flotilla-owned ClusterRoleBinding in a
//     member until it is back.
func Policy(ctx context.Context, out io.Writer, n, runs int) error {
	tmp, err := os.MkdirTemp("", "flotilla-bench-policy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lf, err := startLocal(tmp, n, 1)
	if err != nil {
		return err
	}
	defer lf.stop()
	cl := lf.cl
	var members []*kubernetes.Clientset
	for i := range n {
		name, dir := "c"+strconv.Itoa(i), lf.clusterDirs[i]
		agent, err := startAgent(ctx, cl, lf.cfg, tmp, name, filepath.Join(dir, "kubeconfig"), "")
		if err != nil {
			return err
		}
		defer agent.Stop(5 * time.Second)
		mcfg, err := kubeconfig.Load(filepath.Join(dir, "kubeconfig"))
		if err != nil {
			return err
		}
		mcfg.QPS = -1
		cs, err := kubernetes.NewForConfig(mcfg)
		if err != nil {
			return err
		}
		members = append(members, cs)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var l fv1.ClusterList
		if err := cl.List(ctx, &l); err != nil {
			return false, nil
		}
		healthy := 0
		for _, c := range l.Items {
			if c.Status.Health == fv1.HealthHealthy {
				healthy++
			}
		}
		return healthy == n, nil
	})
	if err != nil {
		return fmt.Errorf("clusters not Healthy: %v", err)
	}

	var clusters []string
	for i := range n {
		clusters = append(clusters, "c"+strconv.Itoa(i))
	}
	// A first run after the fleet turned Healthy meets its settling (the
	// hub's first reports, namespaces synced): warm up, unmeasured.
	if _, err := measureRegistry(ctx, cl, members, "warmup", 1, false); err != nil {
		return err
	}
	if _, err := measureAccess(ctx, cl, members, "warmup", 1, false); err != nil {
		return err
	}
	fmt.Fprintf(out, "policy create on the hub → in every one of %d clusters, %d runs each after one unmeasured; quiet: the fleet settled after the last change; back to back: created as the last policy is deleted, as a script or GitOps sync does:\n", n, runs)
	for _, backToBack := range []bool{false, true} {
		mode, tag := "quiet", "quiet"
		if backToBack {
			mode, tag = "back to back", "b2b"
		}
		reg, err := measureRegistry(ctx, cl, members, tag, runs, backToBack)
		if err != nil {
			return err
		}
		acc, err := measureAccess(ctx, cl, members, tag, runs, backToBack)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s:\n", mode)
		fmt.Fprintf(out, "    image-registry, ValidatingAdmissionPolicy applied:       %s\n", percentiles(reg.applied))
		fmt.Fprintf(out, "    image-registry, enforced (member rejects a dry-run pod):  %s\n", percentiles(reg.enforced))
		fmt.Fprintf(out, "    access, enforced (member authorizes the user):           %s\n", percentiles(acc.granted))
	}

	access := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "bench-drift"}, Spec: fv1.PolicySpec{
		Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
		Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: "bench"}}},
	}}
	if err := cl.Create(ctx, access); err != nil {
		return err
	}
	defer cl.Delete(context.Background(), access)
	crbs := members[0].RbacV1().ClusterRoleBindings()
	present := func(ctx context.Context) (bool, error) {
		_, err := crbs.Get(ctx, "flotilla-bench-drift", metav1.GetOptions{})
		return err == nil, client.IgnoreNotFound(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, present); err != nil {
		return fmt.Errorf("access policy not applied: %v", err)
	}
	var drift []time.Duration
	for range runs {
		if err := crbs.Delete(ctx, "flotilla-bench-drift", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		start := time.Now()
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, false, present); err != nil {
			return fmt.Errorf("binding not restored: %v", err)
		}
		drift = append(drift, time.Since(start))
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(out, "drift restore (ClusterRoleBinding deleted → back), %d runs: %s\n", runs, percentiles(drift))
	return nil
}

// registryRuns are an image-registry policy's latencies. It becomes a
// ValidatingAdmissionPolicy, which the member's apiserver compiles on a 1 s
// tick: "applied" (the object is in the cluster: Flotilla's part) and
// "enforced" differ.
type registryRuns struct{ applied, enforced []time.Duration }

// measureRegistry creates and deletes runs image-registry policies, named
// after tag. Back to back, each is created as soon as the last is deleted;
// else once every member admits again what the last one forbade.
func measureRegistry(ctx context.Context, cl client.Client, members []*kubernetes.Clientset, tag string, runs int, backToBack bool) (registryRuns, error) {
	var res registryRuns
	var last *fv1.Policy
	for r := range runs {
		name := fmt.Sprintf("bench-registry-%s-%d", tag, r)
		p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.PolicySpec{
			Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Organization: true},
			ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"registry.example.com"}},
		}}
		if err := retire(ctx, cl, members, last, backToBack, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
			return dryRunPod(ctx, cs) == nil, nil
		}); err != nil {
			return res, err
		}
		start := time.Now()
		if err := cl.Create(ctx, p); err != nil {
			return res, err
		}
		last = p
		in, err := untilAll(ctx, members, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
			_, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, policy.ObjectName(name), metav1.GetOptions{})
			return err == nil, nil
		}, start)
		if err != nil {
			return res, fmt.Errorf("%s not applied: %v", name, err)
		}
		res.applied = append(res.applied, slices.Max(in))
		lat, err := untilAll(ctx, members, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
			err := dryRunPod(ctx, cs)
			return err != nil && strings.Contains(err.Error(), name), nil
		}, start)
		if err != nil {
			return res, fmt.Errorf("%s not enforced: %v", name, err)
		}
		res.enforced = append(res.enforced, slices.Max(lat))
	}
	return res, retire(ctx, cl, members, last, false, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
		return dryRunPod(ctx, cs) == nil, nil
	})
}

// accessRuns are an access policy's latencies. It becomes a
// ClusterRoleBinding, which the member's authorizer uses as soon as its
// informer sees it.
type accessRuns struct{ granted []time.Duration }

// measureAccess creates and deletes runs access policies, named after tag,
// back to back or each once the last one's grant is gone from every member.
func measureAccess(ctx context.Context, cl client.Client, members []*kubernetes.Clientset, tag string, runs int, backToBack bool) (accessRuns, error) {
	var res accessRuns
	var last *fv1.Policy
	for r := range runs {
		user := fmt.Sprintf("bench-user-%s-%d", tag, r)
		p := &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: user}, Spec: fv1.PolicySpec{
			Type: fv1.PolicyAccess, Scope: fv1.PolicyScope{Organization: true},
			Access: &fv1.AccessSpec{Role: "view", Subjects: []fv1.Subject{{Kind: "User", Name: user}}},
		}}
		lastUser := ""
		if last != nil {
			lastUser = last.Name
		}
		if err := retire(ctx, cl, members, last, backToBack, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
			return !mayListPods(ctx, cs, lastUser), nil
		}); err != nil {
			return res, err
		}
		start := time.Now()
		if err := cl.Create(ctx, p); err != nil {
			return res, err
		}
		last = p
		lat, err := untilAll(ctx, members, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
			return mayListPods(ctx, cs, user), nil
		}, start)
		if err != nil {
			return res, fmt.Errorf("%s not enforced: %v", user, err)
		}
		res.granted = append(res.granted, slices.Max(lat))
	}
	return res, retire(ctx, cl, members, last, false, func(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
		return !mayListPods(ctx, cs, last.Name), nil
	})
}

// retire deletes p (if any). Unless backToBack, it then waits until gone
// holds in every member, and a second more for the agents' own follow-up
// (status reports) to pass: the fleet is quiet.
func retire(ctx context.Context, cl client.Client, members []*kubernetes.Clientset, p *fv1.Policy, backToBack bool, gone func(context.Context, *kubernetes.Clientset) (bool, error)) error {
	if p == nil {
		return nil
	}
	if err := cl.Delete(ctx, p); err != nil {
		return err
	}
	if backToBack {
		return nil
	}
	if _, err := untilAll(ctx, members, gone, time.Now()); err != nil {
		return fmt.Errorf("%s not removed: %v", p.Name, err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	return nil
}

// mayListPods asks cs whether user may list pods in default.
func mayListPods(ctx context.Context, cs *kubernetes.Clientset, user string) bool {
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"},
	}}, metav1.CreateOptions{})
	return err == nil && r.Status.Allowed
}

// dryRunPod asks cs whether it admits a pod from a registry no policy allows.
func dryRunPod(ctx context.Context, cs *kubernetes.Clientset) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "docker.io/library/nginx:1.27"}}},
	}
	_, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// untilAll polls cond for every member in parallel and returns how long
// after start each first held.
func untilAll(ctx context.Context, members []*kubernetes.Clientset, cond func(context.Context, *kubernetes.Clientset) (bool, error), start time.Time) ([]time.Duration, error) {
	lat := make([]time.Duration, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, cs := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				return cond(ctx, cs)
			})
			lat[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// percentiles formats p50, p99 and max of ds.
func percentiles(ds []time.Duration) string {
	s := slices.Clone(ds)
	sortDurations(s)
	return fmt.Sprintf("p50 %s  p99 %s  max %s", pct(s, 50).Round(time.Millisecond), pct(s, 99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
