package locations

import (
	"fmt"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// Assigned names the location a cluster's backups go to when they name
// none: the one assigned to the cluster, else to its group, else to the
// organization (the default hub location, unless another is assigned to
// the organization). Several at one level: the first by name, so the
// choice is stable.
func Assigned(locs []fv1.BackupLocation, cluster, group string) (string, error) {
	var org, grp, own string
	first := func(cur *string, name string) {
		if *cur == "" || name < *cur {
			*cur = name
		}
	}
	for i := range locs {
		a := locs[i].Spec.AssignedTo
		if a == nil || locs[i].DeletionTimestamp != nil {
			continue
		}
		switch {
		case a.Cluster != "" && a.Cluster == cluster:
			first(&own, locs[i].Name)
		case a.ClusterGroup != "" && a.ClusterGroup == group:
			first(&grp, locs[i].Name)
		case a.Organization && locs[i].Name != fv1.DefaultLocation:
			first(&org, locs[i].Name)
		}
	}
	for _, name := range []string{own, grp, org} {
		if name != "" {
			return name, nil
		}
	}
	for i := range locs {
		if locs[i].Name == fv1.DefaultLocation && locs[i].DeletionTimestamp == nil {
			return fv1.DefaultLocation, nil
		}
	}
	return "", fmt.Errorf("no backup location is assigned to cluster %s, its group %s or the organization: create one with `flotilla backup-location create`, or name one with --location", cluster, group)
}
