package locations

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestAssigned(t *testing.T) {
	loc := func(name string, a *fv1.LocationAssignment) fv1.BackupLocation {
		return fv1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.BackupLocationSpec{AssignedTo: a}}
	}
	def := loc(fv1.DefaultLocation, &fv1.LocationAssignment{Organization: true})
	org := loc("org-s3", &fv1.LocationAssignment{Organization: true})
	grp := loc("group-s3", &fv1.LocationAssignment{ClusterGroup: "prod"})
	grp2 := loc("a-group-s3", &fv1.LocationAssignment{ClusterGroup: "prod"})
	own := loc("own", &fv1.LocationAssignment{Cluster: "c1"})
	other := loc("other", &fv1.LocationAssignment{Cluster: "c2"})
	free := loc("free", nil)
	for _, tc := range []struct {
		name string
		locs []fv1.BackupLocation
		want string
	}{
		{"only the default", []fv1.BackupLocation{def, free}, fv1.DefaultLocation},
		{"another on the organization wins over the default", []fv1.BackupLocation{def, org}, "org-s3"},
		{"the group's wins over the organization's", []fv1.BackupLocation{def, org, grp}, "group-s3"},
		{"the cluster's wins over all", []fv1.BackupLocation{def, org, grp, own, other}, "own"},
		{"two at one level: the first by name", []fv1.BackupLocation{grp, grp2}, "a-group-s3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Assigned(tc.locs, "c1", "prod")
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	deleting := def
	deleting.DeletionTimestamp = &metav1.Time{}
	if _, err := Assigned([]fv1.BackupLocation{deleting, free, other}, "c1", "prod"); err == nil || !strings.Contains(err.Error(), "backup-location create") {
		t.Errorf("no location assigned: %v", err)
	}
}
