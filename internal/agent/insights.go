package agent

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// reporter finds what breaks the cluster's policies — objects admitted
// before a policy existed, audit-mode hits, quotas nearly used up, and what
// the agent failed to apply — and reports it in its Cluster's status,
// through the agent's stream.
//
// Pods are checked by the cluster itself: a dry-run create of a copy goes
// through the cluster's admission exactly as a new pod would, so a rejection
// is a violation and a warning an audit hit. Each pod is checked once per
// version of the desired policies, once the cluster enforces that version.
type reporter struct {
	cluster string
	publish func(*fv1.ClusterPolicyStatus)
	scan    dynamic.Interface
	pods    toolscache.SharedIndexInformer
	quotas  toolscache.SharedIndexInformer
	vaps    toolscache.Store // the cluster's Flotilla-owned ValidatingAdmissionPolicies
	t       trigger

	mu       sync.Mutex
	version  string // of the desired policies last applied
	applied  time.Time
	security map[string]policy.NamespaceSecurity
	objects  int32
	syncErrs []fv1.Insight

	seen        map[types.UID][]fv1.Insight // pod findings under seenVersion
	seenVersion string
	sent        *fv1.ClusterPolicyStatus
}

func newReporter(ctx context.Context, cluster string, publish func(*fv1.ClusterPolicyStatus), cfg *rest.Config, quotas toolscache.SharedIndexInformer, vaps toolscache.Store) (*reporter, error) {
	scanCfg := rest.CopyConfig(cfg)
	scanCfg.WarningHandlerWithContext = warningCollector{}
	scan, err := dynamic.NewForConfig(scanCfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r := &reporter{cluster: cluster, publish: publish, scan: scan, quotas: quotas, vaps: vaps, t: newTrigger(), seen: map[types.UID][]fv1.Insight{}}
	r.pods = informerOf(meta, podsResource, meta.Resource(podsResource), &metav1.PartialObjectMetadata{}, "")
	if _, err := r.pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.t.poke() },
		DeleteFunc: func(any) { r.t.poke() },
	}); err != nil {
		return nil, err
	}
	go r.pods.RunWithContext(ctx)
	go r.t.run(ctx, "policy report", r.report)
	return r, nil
}

// synced records the outcome of applying one version of the desired policies.
func (r *reporter) synced(version string, security map[string]policy.NamespaceSecurity, objects int, errs []fv1.Insight) {
	r.mu.Lock()
	if version != r.version {
		r.applied = time.Now()
		// Look again once the cluster enforces what was just applied.
		time.AfterFunc(admissionSettle, r.t.poke)
	}
	r.version, r.security, r.objects, r.syncErrs = version, security, int32(objects), errs
	r.mu.Unlock()
	r.t.poke()
}

// admissionSettle is how long after a policy object lands before its
// cluster surely enforces it: an apiserver loads admission policies on a
// one-second tick, after its own watch has seen them.
const admissionSettle = 3 * time.Second

// report checks what is new since the last report and publishes the
// findings when they changed.
func (r *reporter) report(ctx context.Context) error {
	r.mu.Lock()
	version, security, objects, syncErrs := r.version, r.security, r.objects, r.syncErrs
	settled := time.Since(r.applied) >= admissionSettle
	r.mu.Unlock()
	if version == "" || !r.pods.HasSynced() {
		return nil // nothing applied yet; synced pokes again
	}
	if r.seenVersion != version {
		r.seen, r.seenVersion = map[types.UID][]fv1.Insight{}, version
	}
	live := map[types.UID]bool{}
	var metas []*metav1.PartialObjectMetadata
	for _, o := range r.pods.GetStore().List() {
		if m, ok := o.(*metav1.PartialObjectMetadata); ok && !skipPod(m) {
			metas = append(metas, m)
		}
	}
	sort.Slice(metas, func(i, j int) bool {
		return metas[i].Namespace+"/"+metas[i].Name < metas[j].Namespace+"/"+metas[j].Name
	})
	var podFindings []fv1.Insight
	for _, m := range metas {
		live[m.UID] = true
		found, ok := r.seen[m.UID]
		if !ok {
			var err error
			if found, err = r.checkPod(ctx, m, security); err != nil {
				return err
			}
			if settled {
				r.seen[m.UID] = found
			}
		}
		podFindings = append(podFindings, found...)
	}
	for uid := range r.seen {
		if !live[uid] {
			delete(r.seen, uid)
		}
	}
	all := append(append(append([]fv1.Insight{}, syncErrs...), podFindings...), quotaFindings(r.quotas.GetStore().List())...)
	st := &fv1.ClusterPolicyStatus{Synced: "True", Objects: objects}
	if len(syncErrs) > 0 {
		st.Synced = "False"
	}
	for _, in := range all {
		if in.Kind == fv1.InsightViolation || in.Kind == fv1.InsightAuditHit {
			st.Violations++
		}
	}
	if len(all) > fv1.MaxInsights {
		all = all[:fv1.MaxInsights]
	}
	st.Insights = all
	if reflect.DeepEqual(st, r.sent) {
		return nil
	}
	r.publish(st)
	r.sent = st
	return nil
}

// skipPod leaves out pods the cluster's own machinery runs and pods going away.
func skipPod(m *metav1.PartialObjectMetadata) bool {
	_, mirror := m.Annotations[corev1.MirrorPodAnnotationKey]
	return mirror || m.DeletionTimestamp != nil || policy.Exempt(m.Namespace)
}

var (
	vapName = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)'`)
	vapMsg  = regexp.MustCompile(`ValidatingAdmissionPolicy '[^']+'(?: with binding '[^']+')?(?: denied request)?: (.*)$`)
)

// checkPod asks the cluster whether it would admit the pod today.
func (r *reporter) checkPod(ctx context.Context, m *metav1.PartialObjectMetadata, security map[string]policy.NamespaceSecurity) ([]fv1.Insight, error) {
	pods := r.scan.Resource(podsResource).Namespace(m.Namespace)
	u, err := pods.Get(ctx, m.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pod, err := as[corev1.Pod](u)
	if err != nil {
		return nil, err
	}
	cp := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "flotilla-check-", Namespace: pod.Namespace, Labels: pod.Labels, Annotations: pod.Annotations},
		Spec:       pod.Spec,
	}
	cp.Spec.EphemeralContainers = nil // not allowed on create
	if u, err = unstructuredOf(cp); err != nil {
		return nil, err
	}
	var warnings []string
	wctx := context.WithValue(ctx, warningsKey{}, &warnings)
	_, err = pods.Create(wctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	object := "Pod/" + pod.Name
	var out []fv1.Insight
	finding := func(kind fv1.InsightKind, text string, sec string) {
		in := fv1.Insight{Kind: kind, Namespace: pod.Namespace, Object: object, Message: text}
		switch {
		case vapName.MatchString(text):
			vap := vapName.FindStringSubmatch(text)[1]
			in.Policy = policy.PolicyOf(vap)
			// The admission policy the cluster enforces says what it is.
			if o, ok, _ := r.vaps.GetByKey(vap); ok {
				in.Type = fv1.PolicyType(o.(*unstructured.Unstructured).GetLabels()[policy.PolicyTypeLabel])
			}
			if mm := vapMsg.FindStringSubmatch(text); mm != nil {
				in.Message = mm[1]
			}
		case strings.Contains(text, "PodSecurity"):
			in.Policy, in.Type = sec, fv1.PolicySecurity
			if _, rest, ok := strings.Cut(text, "violate"); ok {
				in.Message = "would violate" + strings.TrimPrefix(rest, "s")
			}
		default:
			return // not about a policy: quota, a missing service account, ...
		}
		out = append(out, in)
	}
	if err != nil && (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) {
		finding(fv1.InsightViolation, err.Error(), security[pod.Namespace].EnforcedBy)
	}
	for _, w := range warnings {
		finding(fv1.InsightAuditHit, w, security[pod.Namespace].AuditedBy)
	}
	return out, nil
}

// quotaFindings reports quotas Flotilla owns that are at least 80% used.
func quotaFindings(objs []any) []fv1.Insight {
	var out []fv1.Insight
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		var q corev1.ResourceQuota
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &q); err != nil {
			continue
		}
		sources := map[string]string{}
		for _, kv := range strings.Split(q.Annotations[policy.SourcesAnnotation], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				sources[k] = v
			}
		}
		names := make([]string, 0, len(q.Status.Hard))
		for n := range q.Status.Hard {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			hard, used := q.Status.Hard[corev1.ResourceName(n)], q.Status.Used[corev1.ResourceName(n)]
			kind, pct := quotaLevel(used, hard)
			if kind == "" {
				continue
			}
			out = append(out, fv1.Insight{
				Policy: sources[n], Type: fv1.PolicyQuota, Kind: kind, Namespace: q.Namespace, Object: "ResourceQuota/" + q.Name,
				Message: fmt.Sprintf("%s: %s of %s used (%d%%)", n, used.String(), hard.String(), pct),
			})
		}
	}
	return out
}

// quotaLevel says whether used is at least 80% (warning) or all (exceeded) of hard.
func quotaLevel(used, hard resource.Quantity) (fv1.InsightKind, int64) {
	if hard.IsZero() {
		if used.IsZero() {
			return "", 0
		}
		return fv1.InsightQuotaExceeded, 100
	}
	pct := used.MilliValue() * 100 / hard.MilliValue()
	switch {
	case pct >= 100:
		return fv1.InsightQuotaExceeded, pct
	case pct >= 80:
		return fv1.InsightQuotaWarning, pct
	}
	return "", pct
}

type warningsKey struct{}

// warningCollector hands the warnings of a request to the slice its context carries.
type warningCollector struct{}

func (warningCollector) HandleWarningHeaderWithContext(ctx context.Context, _ int, _ string, text string) {
	if w, ok := ctx.Value(warningsKey{}).(*[]string); ok {
		*w = append(*w, text)
	}
}
