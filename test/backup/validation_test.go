package backup

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// TestBackupValidation: what the hub's apiserver refuses, for kubectl
// users and the CLI alike, with the rule's own words.
func TestBackupValidation(t *testing.T) {
	refused := func(t *testing.T, what, manifest string, want ...string) {
		t.Helper()
		out, err := hubKubectl(manifest, "create", "-f", "-")
		if err == nil {
			t.Errorf("%s: the hub accepted it:\n%s", what, out)
			hubKubectl(manifest, "delete", "-f", "-")
			return
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: refused with %q, want it to say %q", what, strings.TrimSpace(out), w)
			}
		}
	}
	refusedCLI := func(t *testing.T, what string, args []string, want ...string) {
		t.Helper()
		out, err := flotillaErr(args...)
		if err == nil {
			t.Errorf("%s: flotilla %s succeeded: %s", what, strings.Join(args, " "), out)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: flotilla %s: %v; want it to say %q", what, strings.Join(args, " "), err, w)
			}
		}
	}
	// The rule's message quotes an example, which kubectl may escape.
	cronMsg := []string{"schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week, e.g. ", ") or a descriptor such as @daily"}

	t.Run("schedule", func(t *testing.T) {
		for _, cron := range []string{"61 * * *", "not a cron"} {
			refused(t, "cron "+cron, scheduleManifest("v-cron", `schedule: "`+cron+`"`, "cluster: src"), append([]string{"spec.schedule"}, cronMsg...)...)
			refusedCLI(t, "cron "+cron, []string{"schedule", "create", "v-cron", "--cluster", "src", "--cron", cron}, cronMsg...)
		}
		refused(t, "cluster and group", scheduleManifest("v-both", `schedule: "@daily"`, "cluster: src", "clusterGroup: pair"), "set exactly one of cluster and clusterGroup")
		refusedCLI(t, "cluster and group", []string{"schedule", "create", "v-both", "--cluster", "src", "--cluster-group", "pair", "--cron", "@daily"},
			"set exactly one of cluster and clusterGroup")
		refusedCLI(t, "neither cluster nor group", []string{"schedule", "create", "v-none", "--cron", "@daily"}, "set exactly one of cluster and clusterGroup")
		refusedCLI(t, "long name", []string{"schedule", "create", strings.Repeat("s", 41), "--cluster", "src", "--cron", "@daily"},
			"schedule name must be a DNS-1123 label of at most 40 characters")
		for _, name := range []string{"v-cron", "v-both", "v-none"} {
			if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &fv1.Schedule{}); err == nil {
				t.Errorf("a refused schedule %s exists", name)
			}
		}

		// Five fields out of range pass the API's shape check; the hub
		// reads them, says why not, and makes no backups.
		flotilla(t, "schedule", "create", "v-range", "--cluster", "src", "--cron", "61 * * * *", "--namespaces", "v-none")
		t.Cleanup(func() { flotillaErr("schedule", "delete", "v-range") })
		waitFor(t, 30*time.Second, "v-range says its schedule is invalid", func(ctx context.Context) (bool, error) {
			var s fv1.Schedule
			if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "v-range"}, &s); err != nil {
				return false, err
			}
			c := meta.FindStatusCondition(s.Status.Conditions, fv1.ConditionReady)
			return c != nil && c.Reason == "InvalidSchedule" && strings.Contains(c.Message, `schedule "61 * * * *"`) && s.Status.NextBackup == nil, nil
		})
	})

	t.Run("restore", func(t *testing.T) {
		refused(t, "a namespace mapped to itself", restoreManifest("v-self", "{a: a}"), "namespaceMapping maps a namespace to itself")
		refusedCLI(t, "a namespace mapped to itself", []string{"restore", "create", "v-self", "--from-backup", "b", "--cluster", "dst", "--namespace-mapping", "a:a"},
			"namespaceMapping maps a namespace to itself")
		refused(t, "a mapping from an invalid name", restoreManifest("v-key", "{Bad_NS: b}"), "namespaceMapping keys must be namespace names")
		refused(t, "a mapping to an invalid name", restoreManifest("v-value", "{a: Not_Valid}"), `spec.namespaceMapping.a: Invalid value: "Not_Valid"`,
			"should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'")
		refused(t, "a mapping to a long name", restoreManifest("v-long", "{a: "+strings.Repeat("n", 64)+"}"), "spec.namespaceMapping.a: Too long")
		// The CLI checks names before it asks the hub.
		refusedCLI(t, "a mapping to an invalid name", []string{"restore", "create", "v-value", "--from-backup", "b", "--cluster", "dst", "--namespace-mapping", "a:Not_Valid"},
			`"Not_Valid" is not a valid namespace name`)
	})

	t.Run("frozen specs", func(t *testing.T) {
		// A backup of a cluster that does not exist: the hub fails it at once.
		flotillaWait(t, time.Minute, "backup", "create", "v-frozen", "--cluster", "nope")
		t.Cleanup(func() { flotillaErr("backup", "delete", "v-frozen") })
		out, err := hubKubectl("", "patch", "backup", "v-frozen", "--type", "merge", "-p", `{"spec":{"cluster":"src"}}`)
		if err == nil || !strings.Contains(out, "a backup's spec cannot change: create another backup") {
			t.Errorf("editing a backup's spec: %v: %s", err, out)
		}
		out, err = hubKubectl("", "patch", "backup", "v-frozen", "--type", "merge", "-p", `{"spec":{"includedNamespaces":["other"],"ttl":"1h"}}`)
		if err == nil || !strings.Contains(out, "a backup's spec cannot change") {
			t.Errorf("editing a backup's filter: %v: %s", err, out)
		}
		if b := backupOf(t, "v-frozen"); b.Spec.Cluster != "nope" || len(b.Spec.IncludedNamespaces) != 0 {
			t.Errorf("the backup's spec changed: %+v", b.Spec)
		}
		// Its metadata is the user's.
		if out, err := hubKubectl("", "label", "backup", "v-frozen", "keep=yes"); err != nil {
			t.Errorf("labelling a backup: %v: %s", err, out)
		}

		flotillaWait(t, time.Minute, "restore", "create", "v-frozen-r", "--from-backup", "v-frozen", "--cluster", "dst")
		out, err = hubKubectl("", "patch", "restore", "v-frozen-r", "--type", "merge", "-p", `{"spec":{"namespaceMapping":{"x":"y"}}}`)
		if err == nil || !strings.Contains(out, "a restore's spec cannot change: create another restore") {
			t.Errorf("editing a restore's spec: %v: %s", err, out)
		}
	})

	t.Run("location", func(t *testing.T) {
		refused(t, "s3 without spec.s3", "apiVersion: flotilla.dev/v1alpha1\nkind: BackupLocation\nmetadata: {name: v-nos3}\nspec: {type: s3}\n",
			"spec.s3 is required when type is s3, and only then")
		refused(t, "hub with spec.s3", "apiVersion: flotilla.dev/v1alpha1\nkind: BackupLocation\nmetadata: {name: v-hubs3}\n"+
			"spec: {type: hub, s3: {bucket: bkt, credentialsSecret: c}}\n", "spec.s3 is required when type is s3, and only then")
		refused(t, "a bucket name S3 refuses", "apiVersion: flotilla.dev/v1alpha1\nkind: BackupLocation\nmetadata: {name: v-bucket}\n"+
			"spec: {type: s3, s3: {bucket: Bad_Bucket, credentialsSecret: c}}\n", `spec.s3.bucket: Invalid value: "Bad_Bucket"`)
		refusedCLI(t, "two assignments", []string{"backup-location", "create", "v-two", "--type", "hub", "--organization", "--cluster", "src"},
			"assign a location to at most one of: organization, clusterGroup, cluster")
		refusedCLI(t, "an s3 location without credentials", []string{"backup-location", "create", "v-nocreds", "--bucket", "bkt"},
			"an s3 location needs credentials")
		refusedCLI(t, "deleting the default location", []string{"backup-location", "delete", fv1.DefaultLocation}, "the default backup location always exists")
		if _, err := flotillaErr("backup-location", "list"); err != nil {
			t.Error(err)
		}
		locationOf(t, fv1.DefaultLocation)
	})
}

// hubKubectl runs kubectl against the hub with stdin and returns its
// combined output.
func hubKubectl(stdin string, args ...string) (string, error) {
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", env.Hub.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func scheduleManifest(name string, spec ...string) string {
	return "apiVersion: flotilla.dev/v1alpha1\nkind: Schedule\nmetadata: {name: " + name + "}\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

func restoreManifest(name, mapping string) string {
	return "apiVersion: flotilla.dev/v1alpha1\nkind: Restore\nmetadata: {name: " + name + "}\n" +
		"spec: {backupName: b, cluster: dst, namespaceMapping: " + mapping + "}\n"
}
