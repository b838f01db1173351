package policy

import (
	"sort"
	"unicode/utf8"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// previewMessageMax bounds each message kept in a preview. A status holds up
// to MaxPreviewClusters × MaxPreviewObjects of them, and an insight's
// message may be 2 KiB: uncut, one preview could approach etcd's request
// limit, and the CLI's table shows the first 60 characters anyway.
const previewMessageMax = 256

// Previewable reports whether p gets a preview: an audit-mode policy of a
// type that rejects objects when enforced.
func Previewable(p *fv1.Policy) bool {
	return p.Spec.Mode == fv1.ModeAudit && Rejects(p.Spec.Type)
}

// Preview computes what p would reject if it were enforced, from the audit
// hits the clusters it applies to report, and which of those clusters have
// not yet reported findings for p's current generation (sorted). It returns
// nil for a policy that gets no preview. It is a pure function.
func Preview(p *fv1.Policy, clusters []ClusterView) (*fv1.PolicyPreview, []string) {
	if !Previewable(p) {
		return nil, nil
	}
	pv := &fv1.PolicyPreview{Generation: p.Generation}
	var pending []string
	for _, c := range clusters {
		if _, ok := appliesToCluster(p, c.Namespaces); !ok || c.ReadOnly {
			// A cluster attached read-only never enforces it: what it
			// would reject there is no question.
			continue
		}
		pv.Clusters++
		if c.Report == nil {
			pending = append(pending, c.Name)
			continue
		}
		if gen, ok := c.Report.Audited[p.Name]; ok && gen == p.Generation {
			pv.Reported++
		} else {
			pending = append(pending, c.Name)
		}
		// Hits of a cluster that has not reported this generation are kept:
		// a report still incomplete (or cut short by a timeout) shows what is
		// known, and Reported says how much that is.
		r := fv1.ClusterPreview{Cluster: c.Name}
		for _, in := range c.Report.Insights {
			if in.Policy != p.Name || in.Kind != fv1.InsightAuditHit {
				continue
			}
			r.Rejected++
			r.Objects = append(r.Objects, fv1.PreviewObject{Namespace: in.Namespace, Object: in.Object, Message: truncate(in.Message, previewMessageMax)})
		}
		if r.Rejected == 0 {
			continue
		}
		pv.Rejected += r.Rejected
		sort.Slice(r.Objects, func(i, j int) bool {
			a, b := r.Objects[i], r.Objects[j]
			if a.Namespace != b.Namespace {
				return a.Namespace < b.Namespace
			}
			return a.Object < b.Object
		})
		if len(r.Objects) > fv1.MaxPreviewObjects {
			r.Objects = r.Objects[:fv1.MaxPreviewObjects]
		}
		pv.Results = append(pv.Results, r)
	}
	sort.Slice(pv.Results, func(i, j int) bool { return pv.Results[i].Cluster < pv.Results[j].Cluster })
	if len(pv.Results) > fv1.MaxPreviewClusters {
		pv.Results = pv.Results[:fv1.MaxPreviewClusters]
	}
	sort.Strings(pending)
	return pv, pending
}

// truncate cuts s to at most max bytes, on a character boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
