package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// newScheduleCmd is `flotilla schedule`.
func newScheduleCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Back up a cluster, or every cluster of a group, on a cron schedule",
	}
	o.addFlags(cmd.PersistentFlags())

	var f filterFlags
	var cluster, group, cron, zone, location string
	var ttl time.Duration
	var paused bool
	create := &cobra.Command{
		Use:   "create NAME --cron EXPR (--cluster C | --cluster-group G)",
		Short: "Make backups on a schedule; --ttl is how long each is kept",
		Example: `  flotilla schedule create nightly --cluster-group prod --cron "0 2 * * *" --ttl 168h
  flotilla schedule create hourly-shop --cluster prod-eu --namespaces shop --cron @hourly --time-zone Europe/Berlin`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rf, err := f.filter()
			if err != nil {
				return err
			}
			s := &fv1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Spec: fv1.ScheduleSpec{
				Schedule: cron, TimeZone: zone, Paused: paused, Cluster: cluster, ClusterGroup: group,
				Template: fv1.BackupTemplate{ResourceFilter: rf, StorageLocation: location, TTL: &metav1.Duration{Duration: ttl}}}}
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := cl.Create(ctx, s); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "schedule %s created\n", s.Name)
				return nil
			})
		},
	}
	f.add(create.Flags())
	create.Flags().StringVar(&cron, "cron", "", `when: five cron fields ("0 2 * * *") or @daily, @hourly, @every 6h`)
	create.Flags().StringVar(&zone, "time-zone", "", "IANA time zone the schedule is read in (default UTC)")
	create.Flags().StringVar(&cluster, "cluster", "", "the cluster to back up")
	create.Flags().StringVar(&group, "cluster-group", "", "back up every cluster of this group, one backup each")
	create.Flags().StringVar(&location, "location", "", "backup location (default: each cluster's assigned one)")
	create.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "how long each backup is kept")
	create.Flags().BoolVar(&paused, "paused", false, "create it paused")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List schedules",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var l fv1.ScheduleList
				if err := cl.List(ctx, &l); err != nil {
					return err
				}
				if format != "table" {
					return printObjects(c.OutOrStdout(), format, false, l.Items)
				}
				var rows [][]string
				for _, s := range l.Items {
					target := s.Spec.Cluster
					if s.Spec.ClusterGroup != "" {
						target = "group " + s.Spec.ClusterGroup
					}
					rows = append(rows, []string{s.Name, s.Spec.Schedule, target, fmt.Sprint(s.Spec.Paused), timeCell(s.Status.LastBackup), timeCell(s.Status.NextBackup), readyMessage(s.Status.Conditions)})
				}
				return table(c.OutOrStdout(), []string{"NAME", "SCHEDULE", "BACKS UP", "PAUSED", "LAST", "NEXT", "STATUS"}, rows)
			})
		},
	}
	addOutputFlag(list, &format)

	pause := func(use string, to bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: map[bool]string{true: "Pause a schedule", false: "Resume a paused schedule"}[to],
			Args:  cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return o.run(func(ctx context.Context, cl client.Client) error {
					s := &fv1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}
					patch := []byte(fmt.Sprintf(`{"spec":{"paused":%t}}`, to))
					if err := cl.Patch(ctx, s, client.RawPatch("application/merge-patch+json", patch)); err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "schedule %s %sd\n", args[0], use)
					return nil
				})
			},
		}
	}
	cmd.AddCommand(create, list, pause("pause", true), pause("resume", false), newJobDeleteCmd(o, "schedule", &fv1.Schedule{}))
	return cmd
}

func timeCell(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
