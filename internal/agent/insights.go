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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// reporter finds what breaks the cluster's policies — objects admitted
// before a policy existed, audit-mode hits, quotas nearly used up, what the
// agent failed to apply and kinds the cluster does not serve — and reports
// it in its Cluster's status, through the agent's stream.
//
// Objects are checked by the cluster itself: a dry-run create of a copy goes
// through the cluster's admission exactly as a new object would, so a
// rejection is a violation and a warning an audit hit. Every object of every
// kind an admission policy governs is checked (pods always, for Pod
// Security), once per version of the object and of the desired policies,
// once the cluster enforces that version.
type reporter struct {
	cluster string
	publish func(*fv1.ClusterPolicyStatus)
	scan    dynamic.Interface
	meta    metadata.Interface
	ctx     context.Context
	pods    toolscache.SharedIndexInformer
	quotas  toolscache.SharedIndexInformer
	vaps    toolscache.Store // the cluster's Flotilla-owned ValidatingAdmissionPolicies
	t       trigger
	kinds   map[schema.GroupVersionResource]*kindScan // of the report goroutine

	mu      sync.Mutex
	version string // of the desired policies last applied
	applied time.Time
	last    *applied
	audits  map[string]int64

	seen        map[types.UID]checked // findings under seenVersion
	seenVersion string
	sent        *fv1.ClusterPolicyStatus
}

func newReporter(ctx context.Context, cluster string, publish func(*fv1.ClusterPolicyStatus), cfg *rest.Config, quotas toolscache.SharedIndexInformer, vaps toolscache.Store) (*reporter, error) {
	scanCfg := rest.CopyConfig(cfg)
	scanCfg.WarningHandlerWithContext = warningCollector{}
	scanCfg.QPS, scanCfg.Burst = scanQPS, scanQPS
	scan, err := dynamic.NewForConfig(scanCfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r := &reporter{cluster: cluster, publish: publish, scan: scan, meta: meta, ctx: ctx, quotas: quotas, vaps: vaps, t: newTrigger(),
		kinds: map[schema.GroupVersionResource]*kindScan{}, seen: map[types.UID]checked{}}
	r.watchKinds(ctx, meta, nil)
	r.pods = r.kinds[podsResource].inf
	go r.t.run(ctx, "policy report", r.report)
	return r, nil
}

// synced records the outcome of applying one version of the desired
// policies, and the audit-mode policies (by generation) it holds.
func (r *reporter) synced(version string, res *applied, audits map[string]int64) {
	r.mu.Lock()
	if version != r.version {
		r.applied = time.Now()
		// Look again once the cluster enforces what was just applied.
		time.AfterFunc(admissionSettle, r.t.poke)
	}
	r.version, r.last, r.audits = version, res, audits
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
	version, res, audits := r.version, r.last, r.audits
	settled := time.Since(r.applied) >= admissionSettle
	r.mu.Unlock()
	if version != "" && res != nil && res.readOnly {
		return r.reportReadOnly(res)
	}
	if version == "" || res == nil || !settled {
		// Nothing applied yet, or the cluster may not enforce it yet (a
		// check now could find nothing wrong): synced pokes again.
		return nil
	}
	r.watchKinds(r.ctx, r.meta, res.governed)
	for _, ks := range r.kinds {
		if !ks.inf.HasSynced() {
			return nil // its sync pokes
		}
	}
	if r.seenVersion != version {
		r.seen, r.seenVersion = map[types.UID]checked{}, version
	}
	live := map[types.UID]bool{}
	todo := map[schema.GroupVersionResource][]*metav1.PartialObjectMetadata{}
	var findings []fv1.Insight
	for gvr, ks := range r.kinds {
		for _, o := range ks.inf.GetStore().List() {
			m, ok := o.(*metav1.PartialObjectMetadata)
			if !ok || skipObject(m) {
				continue
			}
			live[m.UID] = true
			if c, ok := r.seen[m.UID]; ok && c.version == versionOf(m) {
				findings = append(findings, c.findings...)
				continue
			}
			todo[gvr] = append(todo[gvr], m)
		}
	}
	found, err := r.checkAll(ctx, todo, res.security)
	if err != nil {
		return err
	}
	for _, ms := range todo {
		for _, m := range ms {
			findings = append(findings, found[m.UID]...)
			r.seen[m.UID] = checked{version: versionOf(m), findings: found[m.UID]}
		}
	}
	for uid := range r.seen {
		if !live[uid] {
			delete(r.seen, uid)
		}
	}
	sortFindings(findings)
	all := append(append(append([]fv1.Insight{}, res.errs...), res.notices...), findings...)
	if r.quotas != nil {
		all = append(all, quotaFindings(r.quotas.GetStore().List())...)
	}
	st := &fv1.ClusterPolicyStatus{Synced: "True", Objects: int32(res.objects)}
	if len(res.errs) > 0 {
		st.Synced = "False"
	}
	if len(audits) > 0 {
		st.Audited = audits // every governed object was checked against them
	}
	for _, in := range all {
		if in.Kind == fv1.InsightViolation || in.Kind == fv1.InsightAuditHit {
			st.Violations++
		}
	}
	r.send(st, all)
	return nil
}

// send publishes st with insights (at most fv1.MaxInsights) unless it is
// what was last sent.
func (r *reporter) send(st *fv1.ClusterPolicyStatus, insights []fv1.Insight) {
	if len(insights) > fv1.MaxInsights {
		insights = insights[:fv1.MaxInsights]
	}
	st.Insights = insights
	if reflect.DeepEqual(st, r.sent) {
		return
	}
	r.publish(st)
	r.sent = st
}

// reportReadOnly publishes what the agent of a cluster attached read-only
// knows of its policies: each is not enforced. It checks no object: the
// cluster holds none of Flotilla's admission policies to judge them by,
// and a check is a dry-run create, which a read-only grant refuses.
func (r *reporter) reportReadOnly(res *applied) error {
	r.watchKinds(r.ctx, r.meta, nil) // pods only, which inventory counts
	st := &fv1.ClusterPolicyStatus{Synced: "True"}
	if len(res.notEnforced) > 0 {
		st.Synced = "False" // the cluster does not hold what its policies need
	}
	r.send(st, res.notEnforced)
	return nil
}

var (
	vapName = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)'`)
	vapMsg  = regexp.MustCompile(`ValidatingAdmissionPolicy '[^']+'(?: with binding '[^']+')?(?: denied request)?: (.*)$`)
)

// check asks the cluster whether it would admit u today.
func (r *reporter) check(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, security map[string]policy.NamespaceSecurity) ([]fv1.Insight, error) {
	var warnings []string
	wctx := context.WithValue(ctx, warningsKey{}, &warnings)
	_, err := r.scan.Resource(gvr).Namespace(u.GetNamespace()).Create(wctx, checkCopy(u), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	object := u.GetKind() + "/" + u.GetName()
	var out []fv1.Insight
	finding := func(kind fv1.InsightKind, text string, sec string) {
		in := fv1.Insight{Kind: kind, Namespace: u.GetNamespace(), Object: object, Message: text}
		switch {
		case vapName.MatchString(text):
			vap := vapName.FindStringSubmatch(text)[1]
			in.Policy = policy.PolicyOf(vap)
			// The admission policy the cluster enforces says what it is.
			if r.vaps != nil {
				if o, ok, _ := r.vaps.GetByKey(vap); ok {
					in.Type = fv1.PolicyType(o.(*unstructured.Unstructured).GetLabels()[policy.PolicyTypeLabel])
				}
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
		finding(fv1.InsightViolation, err.Error(), security[u.GetNamespace()].EnforcedBy)
	}
	for _, w := range warnings {
		finding(fv1.InsightAuditHit, w, security[u.GetNamespace()].AuditedBy)
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
