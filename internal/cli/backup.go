package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// newBackupCmd is `flotilla backup`.
func newBackupCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up clusters' objects, list, describe and delete backups",
		Long: `Backups are taken by each cluster's agent, nothing to install in the cluster,
and kept in a backup location: the hub itself (the default) or an S3 bucket.
Archives are in Velero's format: Velero can read them, and Flotilla restores
Velero's (flotilla restore create --from-location).`,
	}
	o.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newBackupCreateCmd(o), newJobListCmd[fv1.Backup](o, "backup", listBackups),
		newJobGetCmd[fv1.Backup](o, "backup"), newBackupDescribeCmd(o), newJobDeleteCmd(o, "backup", &fv1.Backup{}),
		newBackupDownloadCmd(o))
	return cmd
}

// filterFlags are the flags of a backup's or a restore's resource filter.
type filterFlags struct {
	namespaces, excludeNamespaces, resources, excludeResources []string
	selector                                                   string
	clusterResources                                           string
}

func (f *filterFlags) add(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.namespaces, "namespaces", nil, "only these namespaces (default: all)")
	fs.StringSliceVar(&f.excludeNamespaces, "exclude-namespaces", nil, "leave these namespaces out")
	fs.StringSliceVar(&f.resources, "resources", nil, "only these resources, as resource or resource.group (configmaps, deployments.apps)")
	fs.StringSliceVar(&f.excludeResources, "exclude-resources", nil, "leave these resources out")
	fs.StringVarP(&f.selector, "selector", "l", "", "only objects with these labels (k=v,k2 in (a,b))")
	fs.StringVar(&f.clusterResources, "include-cluster-resources", "auto", "cluster-scoped resources: auto (with a whole-cluster backup), yes or no")
}

func (f *filterFlags) filter() (fv1.ResourceFilter, error) {
	rf := fv1.ResourceFilter{IncludedNamespaces: f.namespaces, ExcludedNamespaces: f.excludeNamespaces,
		IncludedResources: f.resources, ExcludedResources: f.excludeResources}
	if f.selector != "" {
		sel, err := metav1.ParseToLabelSelector(f.selector)
		if err != nil {
			return rf, fmt.Errorf("--selector %q: %v", f.selector, err)
		}
		rf.LabelSelector = sel
	}
	switch f.clusterResources {
	case "auto", "":
	case "yes", "true":
		rf.IncludeClusterResources = ptrTo(true)
	case "no", "false":
		rf.IncludeClusterResources = ptrTo(false)
	default:
		return rf, fmt.Errorf("--include-cluster-resources %q: give auto, yes or no", f.clusterResources)
	}
	return rf, nil
}

func ptrTo[T any](v T) *T { return &v }

func newBackupCreateCmd(o *hubOptions) *cobra.Command {
	var f filterFlags
	var cluster, location string
	var ttl time.Duration
	var waitFor bool
	cmd := &cobra.Command{
		Use:   "create NAME --cluster C",
		Short: "Back up a cluster",
		Example: `  flotilla backup create nightly-apps --cluster prod-eu --namespaces apps,web --ttl 168h --wait
  flotilla backup create tagged --cluster prod-eu --selector app=shop`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if cluster == "" {
				return fmt.Errorf("--cluster is required: name the attached cluster to back up")
			}
			rf, err := f.filter()
			if err != nil {
				return err
			}
			b := &fv1.Backup{ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Spec: fv1.BackupSpec{Cluster: cluster,
				BackupTemplate: fv1.BackupTemplate{ResourceFilter: rf, StorageLocation: location}}}
			if c.Flags().Changed("ttl") {
				b.Spec.TTL = &metav1.Duration{Duration: ttl}
			}
			return o.run(func(ctx context.Context, cl client.Client) error { return createJob(ctx, c, cl, b, waitFor) })
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&cluster, "cluster", "", "the attached cluster to back up")
	cmd.Flags().StringVar(&location, "location", "", "backup location (default: the one assigned to the cluster, its group or the organization)")
	cmd.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "how long the backup is kept")
	cmd.Flags().BoolVar(&waitFor, "wait", false, "show progress and return when the backup is done (non-zero if it failed)")
	return cmd
}

func listBackups(ctx context.Context, cl client.Client) ([]fv1.Backup, error) {
	var l fv1.BackupList
	return l.Items, cl.List(ctx, &l)
}

func getBackup(b fv1.Backup) []string {
	return []string{b.Name, b.Spec.Cluster, phaseCell(b.Status.Phase), strconv.FormatInt(b.Status.ItemsDone, 10),
		cell(b.Status.StorageLocation), size(b.Status.Size), expires(b.Status.Expiration), age(b.CreationTimestamp)}
}

var backupHeader = []string{"NAME", "CLUSTER", "PHASE", "ITEMS", "LOCATION", "SIZE", "EXPIRES", "AGE"}

func newBackupDescribeCmd(o *hubOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a backup: what it holds, where, and every warning and error",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				var b fv1.Backup
				if err := cl.Get(ctx, client.ObjectKey{Name: args[0]}, &b); err != nil {
					return err
				}
				w := c.OutOrStdout()
				fmt.Fprintf(w, "Name:        %s\nCluster:     %s\nPhase:       %s\nLocation:    %s\n", b.Name, b.Spec.Cluster, phaseCell(b.Status.Phase), cell(b.Status.StorageLocation))
				fmt.Fprintf(w, "Namespaces:  %s\nResources:   %s\n", listOrAll(b.Spec.IncludedNamespaces, b.Spec.ExcludedNamespaces), listOrAll(b.Spec.IncludedResources, b.Spec.ExcludedResources))
				if b.Spec.LabelSelector != nil {
					fmt.Fprintf(w, "Selector:    %s\n", metav1.FormatLabelSelector(b.Spec.LabelSelector))
				}
				fmt.Fprintf(w, "Items:       %d of %d\nSize:        %s\nChecksum:    %s\nExpires:     %s\n", b.Status.ItemsDone, b.Status.TotalItems, size(b.Status.Size), cell(b.Status.Checksum), expires(b.Status.Expiration))
				describeProgress(w, b.Status.JobProgress, b.Status.Conditions)
				return nil
			})
		},
	}
}

func listOrAll(in, out []string) string {
	s := "all"
	if len(in) > 0 {
		s = strings.Join(in, ", ")
	}
	if len(out) > 0 {
		s += " except " + strings.Join(out, ", ")
	}
	return s
}

func size(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func expires(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	if d := time.Until(t.Time); d > 0 {
		return "in " + age(metav1.NewTime(time.Now().Add(-d)))
	}
	return "expired"
}

func phaseCell(p fv1.JobPhase) string {
	if p == "" {
		return string(fv1.PhaseNew)
	}
	return string(p)
}
