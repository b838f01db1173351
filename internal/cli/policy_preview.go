package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// previewReport is what `policy preview` and `policy create --dry-run` print.
type previewReport struct {
	Policy string `json:"policy"`
	// DryRun: the policy was created in audit mode under a temporary name
	// for the report, then deleted.
	DryRun bool `json:"dryRun,omitempty"`
	// Complete: every cluster the policy applies to has checked its objects
	// against the policy's current generation.
	Complete bool `json:"complete"`
	// NotReported names the clusters whose findings are missing.
	NotReported       []string `json:"notReported,omitempty"`
	fv1.PolicyPreview `json:",inline"`
}

// previewPoll is how often the wait reads the policy's status: the hub
// sums reports up at most every 2 s, so polling faster gains little.
const previewPoll = 250 * time.Millisecond

// errInterrupted ends a wait cut short by Ctrl-C.
var errInterrupted = errors.New("interrupted")

func newPolicyPreviewCmd(o *hubOptions) *cobra.Command {
	var format string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "preview NAME [--wait DURATION]",
		Short: "What an audit-mode policy would reject if it were enforced, cluster by cluster",
		Long: "Waits until every cluster the policy applies to has checked its existing objects against the\n" +
			"policy's current version, then prints the objects it would reject. To preview a policy before\n" +
			"creating it, use 'flotilla policy create ... --dry-run'.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var p fv1.Policy
				if err := cl.Get(ctx, client.ObjectKey{Name: args[0]}, &p); err != nil {
					return err
				}
				if err := checkPreviewable(&p, false); err != nil {
					return err
				}
				rep, err := awaitPreview(ctx, cl, p.Name, wait)
				if err != nil {
					return err
				}
				return printPreview(c.OutOrStdout(), format, rep, wait)
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", time.Minute, "how long to wait for every cluster's findings")
	addOutputFlag(cmd, &format)
	return cmd
}

// checkPreviewable explains why p gets no preview, and how to get one.
func checkPreviewable(p *fv1.Policy, dryRun bool) error {
	if !policy.Rejects(p.Spec.Type) {
		return fmt.Errorf("a preview shows the existing objects a policy would reject; it works for security, image-registry and custom policies, not %s policies", p.Spec.Type)
	}
	if !dryRun && p.Spec.Mode != fv1.ModeAudit {
		return fmt.Errorf("policy %s is in %s mode: preview works for audit-mode policies; preview its rules without enforcing them with 'flotilla policy create NAME ... --dry-run', or set spec.mode to audit (flotilla policy create NAME ... --mode audit)", p.Name, p.Spec.Mode)
	}
	return nil
}

// awaitPreview waits until name's preview covers its current generation in
// every cluster it applies to, or wait passes, and returns what there is
// then. Past the wait, it names the clusters that have not reported.
func awaitPreview(ctx context.Context, cl client.Client, name string, wait time.Duration) (previewReport, error) {
	deadline := time.Now().Add(wait)
	for {
		var p fv1.Policy
		if err := cl.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
			if ctx.Err() != nil {
				return previewReport{}, errInterrupted
			}
			return previewReport{}, err
		}
		rep := previewReport{Policy: p.Name}
		pv := p.Status.Preview
		if pv != nil && pv.Generation == p.Generation {
			rep.PolicyPreview = *pv
			if pv.Reported == pv.Clusters {
				rep.Complete = true
				return rep, nil
			}
		}
		if time.Now().After(deadline) {
			pending, err := notReported(ctx, cl, &p)
			rep.NotReported = pending
			return rep, err
		}
		select {
		case <-ctx.Done():
			return previewReport{}, errInterrupted
		case <-time.After(previewPoll):
		}
	}
}

// notReported names the clusters p applies to whose findings do not cover
// its current generation, decided as the hub decides it.
func notReported(ctx context.Context, cl client.Client, p *fv1.Policy) ([]string, error) {
	var clusters fv1.ClusterList
	if err := cl.List(ctx, &clusters); err != nil {
		return nil, err
	}
	var nss fv1.ClusterNamespaceList
	if err := cl.List(ctx, &nss); err != nil {
		return nil, err
	}
	_, pending := policy.Preview(p, policy.Views(clusters.Items, nss.Items))
	return pending, nil
}

// printPreview prints rep as a table with a summary line, or as YAML or
// JSON; an incomplete report is printed, then returned as an error.
func printPreview(w io.Writer, format string, rep previewReport, wait time.Duration) error {
	if format == "yaml" || format == "json" {
		if err := printValue(w, format, rep); err != nil {
			return err
		}
	} else {
		var rows [][]string
		for _, r := range rep.Results {
			for _, o := range r.Objects {
				rows = append(rows, []string{r.Cluster, cell(o.Namespace), cell(o.Object), cell(o.Message)})
			}
			if more := int(r.Rejected) - len(r.Objects); more > 0 {
				rows = append(rows, []string{r.Cluster, "-", "…", fmt.Sprintf("%d more not listed", more)})
			}
		}
		if len(rows) > 0 {
			if err := table(w, []string{"CLUSTER", "NAMESPACE", "OBJECT", "MESSAGE"}, rows); err != nil {
				return err
			}
		}
		fmt.Fprintln(w, previewSummary(&rep.PolicyPreview))
	}
	if !rep.Complete {
		return fmt.Errorf("the report is incomplete: %d of %d clusters have not checked their objects against this version of policy %s within %s: %s; are their agents connected (flotilla cluster list)? wait longer with --wait",
			rep.Clusters-rep.Reported, rep.Clusters, rep.Policy, wait, strings.Join(rep.NotReported, ", "))
	}
	return nil
}

// previewSummary is the preview in one line.
func previewSummary(pv *fv1.PolicyPreview) string {
	switch {
	case pv.Clusters == 0:
		return "the policy applies to no cluster yet: nothing would be rejected"
	case pv.Rejected == 0:
		return fmt.Sprintf("no existing object in %s would be rejected", plural(int(pv.Clusters), "cluster"))
	}
	listed := int32(0)
	for _, r := range pv.Results {
		listed += r.Rejected
	}
	in := strconv.Itoa(len(pv.Results))
	if listed < pv.Rejected {
		in += "+" // clusters beyond the ones a status lists
	}
	return fmt.Sprintf("%s in %s of %s would be rejected", plural(int(pv.Rejected), "object"), in, plural(int(pv.Clusters), "cluster"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
