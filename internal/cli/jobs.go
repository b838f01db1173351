package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Backups and restores share their list, get, delete and --wait.

func newJobListCmd[T any, P interface {
	*T
	client.Object
}](o *hubOptions, noun string, list func(context.Context, client.Client) ([]T, error)) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + noun + "s",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				items, err := list(ctx, cl)
				if err != nil {
					return err
				}
				return printJobs[T, P](c.OutOrStdout(), format, items)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newJobGetCmd[T any, P interface {
	*T
	client.Object
}](o *hubOptions, noun string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one " + noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var obj T
				if err := cl.Get(ctx, client.ObjectKey{Name: args[0]}, P(&obj)); err != nil {
					return err
				}
				return printJobs[T, P](c.OutOrStdout(), format, []T{obj})
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// printJobs prints backups or restores as a table, JSON or YAML.
func printJobs[T any, P interface {
	*T
	client.Object
}](w io.Writer, format string, items []T) error {
	if format != "table" {
		return printObjects[T, P](w, format, false, items)
	}
	var header []string
	rows := make([][]string, 0, len(items))
	for i := range items {
		switch o := any(P(&items[i])).(type) {
		case *fv1.Backup:
			header = backupHeader
			rows = append(rows, getBackup(*o))
		case *fv1.Restore:
			header = restoreHeader
			rows = append(rows, getRestore(*o))
		}
	}
	if header == nil {
		var zero T
		switch any(P(&zero)).(type) {
		case *fv1.Backup:
			header = backupHeader
		default:
			header = restoreHeader
		}
	}
	return table(w, header, rows)
}

func newJobDeleteCmd(o *hubOptions, noun string, obj client.Object) *cobra.Command {
	what := map[string]string{
		"backup":  "Delete a backup, from the hub and from its location",
		"restore": "Delete a restore's record (what it restored stays)",
	}[noun]
	return &cobra.Command{
		Use:   "delete NAME",
		Short: what,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				obj.SetName(args[0])
				if err := cl.Delete(ctx, obj); apierrors.IsNotFound(err) {
					return fmt.Errorf("%s %s does not exist", noun, args[0])
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s deleted\n", noun, args[0])
				return nil
			})
		},
	}
}

// createJob creates a Backup or a Restore and, with wait, follows it.
func createJob(ctx context.Context, c *cobra.Command, cl client.Client, job client.Object, wait bool) error {
	if err := cl.Create(ctx, job); err != nil {
		return err
	}
	noun := map[bool]string{true: "backup", false: "restore"}[isBackup(job)]
	fmt.Fprintf(c.OutOrStdout(), "%s %s created\n", noun, job.GetName())
	if !wait {
		return nil
	}
	return waitJob(ctx, c, cl, job)
}

func isBackup(o client.Object) bool { _, ok := o.(*fv1.Backup); return ok }

// progressOf is a Backup's or a Restore's progress and Ready message.
func progressOf(o client.Object) (fv1.JobProgress, string) {
	if b, ok := o.(*fv1.Backup); ok {
		return b.Status.JobProgress, readyMessage(b.Status.Conditions)
	}
	r := o.(*fv1.Restore)
	return r.Status.JobProgress, readyMessage(r.Status.Conditions)
}

// waitJob follows a backup or restore until it is done, showing its
// progress: one line rewritten in place on a terminal, a line per change
// otherwise. It fails when the job does not complete cleanly.
func waitJob(ctx context.Context, c *cobra.Command, cl client.Client, obj client.Object) error {
	line := newLiveLine(c.ErrOrStderr())
	name := obj.GetName()
	for {
		if err := cl.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			return err
		}
		p, msg := progressOf(obj)
		text := fmt.Sprintf("%s: %s, %d/%d items, %d skipped, %d warnings, %d errors", name, phaseCell(p.Phase), p.ItemsDone, p.TotalItems, p.ItemsSkipped, p.Warnings, p.Errors)
		if p.Phase == "" || p.Phase == fv1.PhaseNew {
			text = name + ": " + msg
		}
		line.show(text)
		if p.Phase.Done() {
			line.end()
			return jobResult(name, p, msg)
		}
		select {
		case <-ctx.Done():
			return errors.New("stopped waiting; the job goes on: see `describe`")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// jobResult is nil for a completed job, else an error with the reason.
func jobResult(name string, p fv1.JobProgress, msg string) error {
	switch p.Phase {
	case fv1.PhaseCompleted:
		return nil
	case fv1.PhasePartiallyFailed:
		first := ""
		for _, m := range p.Messages {
			if m.Severity == "Error" {
				first = ": first: " + jobMessage(m)
				break
			}
		}
		return fmt.Errorf("%s partially failed with %d errors%s", name, p.Errors, first)
	}
	return fmt.Errorf("%s failed: %s", name, msg)
}

func jobMessage(m fv1.JobMessage) string {
	s := ""
	if m.Resource != "" {
		s = m.Resource
		if m.Namespace != "" {
			s += " " + m.Namespace + "/" + m.Name
		} else if m.Name != "" {
			s += " " + m.Name
		}
		s += ": "
	}
	return s + m.Message
}

// describeProgress prints a job's times, counts and messages.
func describeProgress(w io.Writer, p fv1.JobProgress, conds []metav1.Condition) {
	ts := func(t *metav1.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Started:     %s\nCompleted:   %s\n", ts(p.StartTimestamp), ts(p.CompletionTimestamp))
	fmt.Fprintf(w, "Status:      %s\n", readyMessage(conds))
	fmt.Fprintf(w, "Warnings:    %d\nErrors:      %d\n", p.Warnings, p.Errors)
	for _, m := range p.Messages {
		fmt.Fprintf(w, "  %-7s  %s\n", m.Severity, jobMessage(m))
	}
}

// readyMessage is the Ready condition's reason and message.
func readyMessage(conds []metav1.Condition) string {
	c := meta.FindStatusCondition(conds, fv1.ConditionReady)
	if c == nil {
		return "waiting for the hub to accept it"
	}
	return c.Reason + ": " + c.Message
}

// isTerminal says whether w is a terminal, where progress is redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
