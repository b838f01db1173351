package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// ScheduleReconciler makes a Schedule's backups at each tick: one for its
// cluster, or one per cluster then in its group.
type ScheduleReconciler struct {
	Client client.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the reconciler.
func (r *ScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("schedule").For(&fv1.Schedule{}).Complete(r)
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule reads a schedule's cron expression in its time zone.
func ParseSchedule(expr, zone string) (cron.Schedule, *time.Location, error) {
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil {
			return nil, nil, fmt.Errorf("time zone %q is not known: give an IANA name such as Europe/Berlin: %v", zone, err)
		}
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %v", expr, err)
	}
	return s, loc, nil
}

// Reconcile makes the backups of a tick that has come, and waits for the next.
func (r *ScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s fv1.Schedule
	if err := r.Client.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := s.DeepCopy()
	now := r.now()
	sched, zone, err := ParseSchedule(s.Spec.Schedule, s.Spec.TimeZone)
	var wait time.Duration
	switch {
	case err != nil:
		s.Status.NextBackup = nil
		setReady(&s, metav1.ConditionFalse, "InvalidSchedule", err.Error())
	case s.Spec.Paused:
		s.Status.NextBackup = nil
		setReady(&s, metav1.ConditionFalse, "Paused", "paused: no backups until spec.paused is unset")
	default:
		last := s.CreationTimestamp.Time
		if s.Status.LastBackup != nil {
			last = s.Status.LastBackup.Time
		}
		tick := sched.Next(last.In(zone))
		msg := ""
		if !tick.After(now) {
			// Ticks missed while the hub was down make one backup, the latest.
			for n := sched.Next(tick); !n.After(now); n = sched.Next(n) {
				tick = n
			}
			made, err := r.makeBackups(ctx, &s, tick)
			if err != nil {
				return ctrl.Result{}, err
			}
			t := metav1.NewTime(tick)
			s.Status.LastBackup = &t
			msg = fmt.Sprintf("made %d backups at %s; ", made, tick.Format(time.RFC3339))
			tick = sched.Next(tick)
		} else if c := meta.FindStatusCondition(s.Status.Conditions, fv1.ConditionReady); c != nil && c.Reason == "Scheduled" {
			msg = c.Message // keeps the last tick's count
		}
		if msg == "" || s.Status.NextBackup == nil || !s.Status.NextBackup.Time.Equal(tick) {
			setReady(&s, metav1.ConditionTrue, "Scheduled", msg+"next backup at "+tick.Format(time.RFC3339))
		}
		next := metav1.NewTime(tick)
		s.Status.NextBackup = &next
		wait = tick.Sub(now)
	}
	s.Status.ObservedGeneration = s.Generation
	if err := r.Client.Status().Patch(ctx, &s, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

func (r *ScheduleReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// makeBackups creates the tick's backup of each cluster the schedule
// covers; one made already (by a reconcile cut short) is kept.
func (r *ScheduleReconciler) makeBackups(ctx context.Context, s *fv1.Schedule, tick time.Time) (int, error) {
	clusters := []string{s.Spec.Cluster}
	if s.Spec.ClusterGroup != "" {
		var cl fv1.ClusterList
		if err := r.Client.List(ctx, &cl); err != nil {
			return 0, err
		}
		clusters = nil
		for i := range cl.Items {
			if groupOf(&cl.Items[i]) == s.Spec.ClusterGroup && cl.Items[i].DeletionTimestamp == nil {
				clusters = append(clusters, cl.Items[i].Name)
			}
		}
	}
	for _, c := range clusters {
		b := &fv1.Backup{
			ObjectMeta: metav1.ObjectMeta{
				Name:   BackupName(s.Name, c, tick),
				Labels: map[string]string{fv1.LabelSchedule: s.Name, fv1.LabelCluster: c},
			},
			Spec: fv1.BackupSpec{Cluster: c, BackupTemplate: *s.Spec.Template.DeepCopy()},
		}
		if err := r.Client.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return 0, fmt.Errorf("creating backup %s: %w", b.Name, err)
		}
	}
	return len(clusters), nil
}

// BackupName names a schedule's backup of cluster at tick:
// SCHEDULE-CLUSTER-YYYYMMDDHHMMSS, with the cluster's name shortened to a
// hash when the whole would pass 63 characters.
func BackupName(schedule, cluster string, tick time.Time) string {
	ts := tick.UTC().Format("20060102150405")
	name := schedule + "-" + cluster + "-" + ts
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(cluster))
	h := hex.EncodeToString(sum[:])
	room := max(63-len(schedule)-len(ts)-2, 4)
	return schedule + "-" + h[:room] + "-" + ts
}

func setReady(s *fv1.Schedule, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: fv1.ConditionReady, Status: status,
		Reason: reason, Message: msg, ObservedGeneration: s.Generation})
}
