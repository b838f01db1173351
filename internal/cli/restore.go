package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/archive"
)

// newRestoreCmd is `flotilla restore`.
func newRestoreCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup into a cluster: the one it was taken of, or another (migration)",
	}
	o.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newRestoreCreateCmd(o), newJobListCmd[fv1.Restore](o, "restore", listRestores),
		newJobGetCmd[fv1.Restore](o, "restore"), newRestoreDescribeCmd(o), newJobDeleteCmd(o, "restore", &fv1.Restore{}))
	return cmd
}

func newRestoreCreateCmd(o *hubOptions) *cobra.Command {
	var f filterFlags
	var from, location, backup, cluster, mapping, existing string
	var waitFor bool
	cmd := &cobra.Command{
		Use:   "create NAME --from-backup B --cluster C",
		Short: "Restore a backup into an attached cluster",
		Long: `Restore a backup into an attached cluster. --from-backup names a backup the hub
holds; --from-location L --backup B restores one the hub does not know (written
by Velero, say) from location L. --from-location L alone lists those backups.`,
		Example: `  flotilla restore create shop-to-eu2 --from-backup nightly-apps --cluster prod-eu2 --namespace-mapping shop:shop-copy --wait
  flotilla restore create --from-location old-velero
  flotilla restore create adopt-1 --from-location old-velero --backup daily-20260101 --cluster prod-eu`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 && location != "" && backup == "" {
				return o.run(func(ctx context.Context, cl client.Client) error { return listUnknown(ctx, c, cl, location) })
			}
			if len(args) == 0 {
				return fmt.Errorf("give the restore a NAME (or only --from-location L to list what L holds)")
			}
			name := from
			if location != "" {
				name = backup
				if from != "" {
					return fmt.Errorf("give --from-backup, or --from-location with --backup; not both")
				}
			}
			if name == "" {
				return fmt.Errorf("say what to restore: --from-backup B, or --from-location L --backup B")
			}
			if cluster == "" {
				return fmt.Errorf("--cluster is required: name the attached cluster to restore into")
			}
			rf, err := f.filter()
			if err != nil {
				return err
			}
			m, err := archive.ParseNamespaceMapping(mapping)
			if err != nil {
				return fmt.Errorf("--namespace-mapping: %v", err)
			}
			var nm map[string]fv1.NamespaceName
			for from, to := range m {
				if nm == nil {
					nm = map[string]fv1.NamespaceName{}
				}
				nm[from] = fv1.NamespaceName(to)
			}
			r := &fv1.Restore{ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Spec: fv1.RestoreSpec{
				BackupName: name, Location: location, Cluster: cluster, ResourceFilter: rf, NamespaceMapping: nm,
				ExistingResourcePolicy: fv1.ExistingResourcePolicy(existing)}}
			return o.run(func(ctx context.Context, cl client.Client) error { return createJob(ctx, c, cl, r, waitFor) })
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&from, "from-backup", "", "the backup to restore (one the hub holds)")
	cmd.Flags().StringVar(&location, "from-location", "", "read the backup from this location, whether the hub knows it or not")
	cmd.Flags().StringVar(&backup, "backup", "", "with --from-location: the backup's name there")
	cmd.Flags().StringVar(&cluster, "cluster", "", "the attached cluster to restore into")
	cmd.Flags().StringVar(&mapping, "namespace-mapping", "", "restore namespaces under other names: old:new[,old2:new2]")
	cmd.Flags().StringVar(&existing, "existing-resource-policy", string(fv1.ExistingNone), "objects the cluster already has: none (leave them) or update (patch them)")
	cmd.Flags().BoolVar(&waitFor, "wait", false, "show progress and return when the restore is done (non-zero if it failed)")
	return cmd
}

// listUnknown asks the hub to look into a location afresh and prints the
// backups it holds that the hub does not know.
func listUnknown(ctx context.Context, c *cobra.Command, cl client.Client, location string) error {
	var loc fv1.BackupLocation
	if err := cl.Get(ctx, client.ObjectKey{Name: location}, &loc); err != nil {
		return err
	}
	asked := time.Now().Truncate(time.Second)
	patch := []byte(`{"metadata":{"annotations":{"` + fv1.AnnotationCheck + `":"` + asked.UTC().Format(time.RFC3339) + `"}}}`)
	if err := cl.Patch(ctx, &loc, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	// The hub looks within a second or two; an old listing is printed,
	// with its age, if it does not.
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKey{Name: location}, &loc); err != nil {
			return false, nil
		}
		return loc.Status.LastChecked != nil && !loc.Status.LastChecked.Time.Before(asked), nil
	})
	checked := "never"
	if loc.Status.LastChecked != nil {
		checked = age(*loc.Status.LastChecked) + " ago"
	}
	w := c.OutOrStdout()
	fmt.Fprintf(w, "backups in location %s that the hub does not know (checked %s):\n", location, checked)
	if len(loc.Status.Unknown) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, n := range loc.Status.Unknown {
		fmt.Fprintf(w, "  %s\n", n)
	}
	fmt.Fprintf(w, "restore one with: flotilla restore create NAME --from-location %s --backup BACKUP --cluster CLUSTER\n", location)
	return nil
}

func listRestores(ctx context.Context, cl client.Client) ([]fv1.Restore, error) {
	var l fv1.RestoreList
	return l.Items, cl.List(ctx, &l)
}

var restoreHeader = []string{"NAME", "BACKUP", "CLUSTER", "PHASE", "RESTORED", "SKIPPED", "ERRORS", "AGE"}

func getRestore(r fv1.Restore) []string {
	backup := r.Spec.BackupName
	if r.Spec.Location != "" {
		backup = r.Spec.Location + "/" + backup
	}
	return []string{r.Name, backup, r.Spec.Cluster, phaseCell(r.Status.Phase), strconv.FormatInt(r.Status.ItemsDone, 10),
		strconv.FormatInt(r.Status.ItemsSkipped, 10), strconv.Itoa(int(r.Status.Errors)), age(r.CreationTimestamp)}
}

func newRestoreDescribeCmd(o *hubOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a restore: what it restored and every warning and error",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				var r fv1.Restore
				if err := cl.Get(ctx, client.ObjectKey{Name: args[0]}, &r); err != nil {
					return err
				}
				w := c.OutOrStdout()
				fmt.Fprintf(w, "Name:        %s\nBackup:      %s\nCluster:     %s\nPhase:       %s\n", r.Name, getRestore(r)[1], r.Spec.Cluster, phaseCell(r.Status.Phase))
				fmt.Fprintf(w, "Namespaces:  %s\nResources:   %s\n", listOrAll(r.Spec.IncludedNamespaces, r.Spec.ExcludedNamespaces), listOrAll(r.Spec.IncludedResources, r.Spec.ExcludedResources))
				if len(r.Spec.NamespaceMapping) > 0 {
					var pairs []string
					for k, v := range r.Spec.NamespaceMapping {
						pairs = append(pairs, k+":"+string(v))
					}
					fmt.Fprintf(w, "Mapping:     %s\n", strings.Join(pairs, ", "))
				}
				fmt.Fprintf(w, "Existing:    %s\nItems:       %d restored, %d skipped, of %d\n", r.Spec.ExistingResourcePolicy, r.Status.ItemsDone, r.Status.ItemsSkipped, r.Status.TotalItems)
				describeProgress(w, r.Status.JobProgress, r.Status.Conditions)
				return nil
			})
		},
	}
}
