package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// clusterInsight is one finding with the cluster that reported it.
type clusterInsight struct {
	Cluster     string `json:"cluster"`
	fv1.Insight `json:",inline"`
}

// insights gathers the findings the clusters report, filtered; an unknown
// cluster is an error rather than an empty answer.
func insights(ctx context.Context, cl client.Client, cluster, typ, pol string) ([]clusterInsight, error) {
	var clusters []fv1.Cluster
	if cluster != "" {
		var c fv1.Cluster
		if err := cl.Get(ctx, client.ObjectKey{Name: cluster}, &c); err != nil {
			return nil, err
		}
		clusters = []fv1.Cluster{c}
	} else {
		var l fv1.ClusterList
		if err := cl.List(ctx, &l); err != nil {
			return nil, err
		}
		clusters = l.Items
	}
	var out []clusterInsight
	for _, c := range clusters {
		if c.Status.Policies == nil {
			continue
		}
		for _, in := range c.Status.Policies.Insights {
			if (typ == "" || string(in.Type) == typ) && (pol == "" || in.Policy == pol) {
				out = append(out, clusterInsight{Cluster: c.Name, Insight: in})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out, nil
}

func printInsights(w io.Writer, format string, ins []clusterInsight) error {
	switch format {
	case "yaml", "json":
		return printValue(w, format, ins)
	}
	rows := make([][]string, len(ins))
	for i, in := range ins {
		rows[i] = []string{in.Cluster, cell(in.Policy), cell(string(in.Type)), string(in.Kind), cell(in.Namespace), cell(in.Object), cell(in.Message)}
	}
	return table(w, []string{"CLUSTER", "POLICY", "TYPE", "KIND", "NAMESPACE", "OBJECT", "MESSAGE"}, rows)
}

func printValue(w io.Writer, format string, v any) error {
	out, err := yaml.Marshal(v)
	if format == "json" {
		out, err = yaml.YAMLToJSON(out)
		out = append(out, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

var policyTypes = []string{"access", "security", "image-registry", "network", "quota", "custom", "mutation"}

func newPolicyInsightsCmd(o *hubOptions) *cobra.Command {
	var cluster, typ, pol, format string
	cmd := &cobra.Command{
		Use:   "insights [--cluster C] [--type T] [--policy P]",
		Short: "What the clusters report: violations, audit hits, quotas nearly used up, sync errors",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			if typ != "" && !contains(policyTypes, typ) {
				return fmt.Errorf("unknown policy type %q; use one of %v", typ, policyTypes)
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				ins, err := insights(ctx, cl, cluster, typ, pol)
				if err != nil {
					return err
				}
				return printInsights(c.OutOrStdout(), format, ins)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	cmd.Flags().StringVar(&typ, "type", "", "only policies of this type")
	cmd.Flags().StringVar(&pol, "policy", "", "only this policy")
	addOutputFlag(cmd, &format)
	return cmd
}

func newPolicyGetCmd(o *hubOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "get NAME", Short: "Show a policy, where it applies and what the clusters report about it", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var p fv1.Policy
				if err := cl.Get(ctx, client.ObjectKey{Name: args[0]}, &p); err != nil {
					return err
				}
				if format != "table" {
					p.SetGroupVersionKind(fv1.GroupVersion.WithKind("Policy"))
					return printObjects(c.OutOrStdout(), format, true, []fv1.Policy{p})
				}
				w := c.OutOrStdout()
				fmt.Fprintf(w, "Name:          %s\nType:          %s\nScope:         %s\nMode:          %s\n", p.Name, p.Spec.Type, scopeText(p.Spec.Scope), p.Spec.Mode)
				fmt.Fprintf(w, "Clusters:      %d\nNoncompliant:  %s\nViolations:    %s\n", p.Status.Clusters,
					strconv.Itoa(int(p.Status.Noncompliant)), strconv.Itoa(int(p.Status.Violations)))
				if pv := p.Status.Preview; pv != nil {
					fmt.Fprintf(w, "Preview:       %s (%d of %d clusters reported, generation %d)\n", previewSummary(pv), pv.Reported, pv.Clusters, pv.Generation)
				}
				for _, cond := range p.Status.Conditions {
					fmt.Fprintf(w, "Condition:     %s=%s (%s) %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
				}
				ins, err := insights(ctx, cl, "", "", p.Name)
				if err != nil || len(ins) == 0 {
					return err
				}
				fmt.Fprintln(w, "\nInsights:")
				return printInsights(w, "table", ins)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
