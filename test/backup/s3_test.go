package backup

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv/s3server"
)

// s3src is a namespace of src for the S3 round trip.
const s3src = `
apiVersion: v1
kind: Namespace
metadata: {name: s3-src}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: s3-src}
data: {mode: s3}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret, namespace: s3-src}
stringData: {token: s3-token-value}
`

func TestBackupAndRestoreThroughS3(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	srv.CreateBucket(t, "flotilla-rt")
	const prefix = "some/prefix"
	createS3Location(t, "s3loc", srv, "flotilla-rt", prefix)
	t.Cleanup(func() { flotillaErr("backup-location", "delete", "s3loc", "--force") })
	waitLocation(t, "s3loc", metav1.ConditionTrue)

	apply(t, members["src"], s3src)
	t.Cleanup(func() { deleteBackups("s3-rt-1", "s3-rt-2") })
	flotillaDone(t, "backup", "create", "s3-rt-1", "--cluster", "src", "--namespaces", "s3-src", "--location", "s3loc")
	b := backupOf(t, "s3-rt-1")
	if b.Status.Phase != fv1.PhaseCompleted || b.Status.StorageLocation != "s3loc" || b.Status.ItemsDone < 3 || b.Status.Size == 0 {
		t.Fatalf("backup status: %+v", b.Status)
	}

	// Velero's layout under the prefix, and no upload left behind.
	keys := bucketKeys(t, srv, "flotilla-rt", prefix+"/backups/s3-rt-1/")
	want := []string{
		prefix + "/backups/s3-rt-1/s3-rt-1-resource-list.json.gz",
		prefix + "/backups/s3-rt-1/s3-rt-1.tar.gz",
		prefix + "/backups/s3-rt-1/velero-backup.json",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("bucket holds %q, want %q", keys, want)
	}
	for _, k := range bucketKeys(t, srv, "flotilla-rt", "") {
		if !strings.HasPrefix(k, prefix+"/backups/") {
			t.Errorf("bucket holds %s, outside the location's prefix", k)
		}
	}
	info, err := srv.Client(t).StatObject(ctx, "flotilla-rt", prefix+"/backups/s3-rt-1/s3-rt-1.tar.gz", minio.StatObjectOptions{})
	if err != nil || info.Size != b.Status.Size {
		t.Errorf("archive in the bucket: %d bytes (%v), the backup says %d", info.Size, err, b.Status.Size)
	}
	md := bucketObject(t, srv, "flotilla-rt", prefix+"/backups/s3-rt-1/velero-backup.json")
	for _, s := range []string{`"apiVersion":"velero.io/v1"`, `"phase":"Completed"`, `"formatVersion":"1.1.0"`, b.Status.Checksum} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("velero-backup.json lacks %s:\n%s", s, md)
		}
	}

	flotillaDone(t, "restore", "create", "s3-rt-1-to-dst", "--from-backup", "s3-rt-1", "--cluster", "dst", "--namespace-mapping", "s3-src:s3-copy")
	if r := restoreOf(t, "s3-rt-1-to-dst"); r.Status.Phase != fv1.PhaseCompleted || r.Status.Errors != 0 || r.Status.ItemsDone < 3 {
		t.Fatalf("restore status: %+v", r.Status)
	}
	dst := members["dst"].Clientset
	if cm, err := dst.CoreV1().ConfigMaps("s3-copy").Get(ctx, "app-config", metav1.GetOptions{}); err != nil || cm.Data["mode"] != "s3" {
		t.Errorf("app-config in dst's s3-copy: %v %v", cm, err)
	}
	if sec, err := dst.CoreV1().Secrets("s3-copy").Get(ctx, "app-secret", metav1.GetOptions{}); err != nil || string(sec.Data["token"]) != "s3-token-value" {
		t.Errorf("app-secret in dst's s3-copy: %v", err)
	}

	// Read from the location by name, as another hub would: the checksum
	// comes from velero-backup.json and is checked.
	flotillaDone(t, "restore", "create", "s3-rt-1-by-location", "--from-location", "s3loc", "--backup", "s3-rt-1", "--cluster", "dst",
		"--namespace-mapping", "s3-src:s3-copy2")
	if r := restoreOf(t, "s3-rt-1-by-location"); r.Status.Phase != fv1.PhaseCompleted || r.Status.Checksum != b.Status.Checksum {
		t.Errorf("restore from the location: %s, checksum %q, want %q", r.Status.Phase, r.Status.Checksum, b.Status.Checksum)
	}

	// A location that holds backups is not deleted by mistake.
	waitFor(t, 30*time.Second, "s3loc counts its backup", func(ctx context.Context) (bool, error) {
		return locationOf(t, "s3loc").Status.Backups == 1, nil
	})
	_, err = flotillaErr("backup-location", "delete", "s3loc")
	if err == nil || !strings.Contains(err.Error(), "backup location s3loc still has 1 backups") || !strings.Contains(err.Error(), "delete them first") ||
		!strings.Contains(err.Error(), "--force") {
		t.Errorf("deleting a location that holds a backup: %v", err)
	}
	locationOf(t, "s3loc") // still there

	// Deleting the backup deletes its objects.
	if out := flotilla(t, "backup", "delete", "s3-rt-1"); !strings.Contains(out, "backup s3-rt-1 deleted") {
		t.Errorf("backup delete printed %q", out)
	}
	waitGone(t, &fv1.Backup{}, "s3-rt-1")
	waitFor(t, 30*time.Second, "s3-rt-1's objects deleted from the bucket", func(context.Context) (bool, error) {
		return len(bucketKeys(t, srv, "flotilla-rt", prefix+"/backups/s3-rt-1/")) == 0, nil
	})

	// --force deletes a location that holds a backup, and leaves the
	// archives in the store.
	flotillaDone(t, "backup", "create", "s3-rt-2", "--cluster", "src", "--namespaces", "s3-src", "--location", "s3loc")
	waitFor(t, 30*time.Second, "s3loc counts its backup", func(ctx context.Context) (bool, error) {
		return locationOf(t, "s3loc").Status.Backups == 1, nil
	})
	if out := flotilla(t, "backup-location", "delete", "s3loc", "--force"); !strings.Contains(out, "backup location s3loc deleted") {
		t.Errorf("backup-location delete --force printed %q", out)
	}
	waitGone(t, &fv1.BackupLocation{}, "s3loc")
	var sec corev1.Secret
	if err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "backup-location-s3loc"}, &sec); !apierrors.IsNotFound(err) {
		t.Errorf("the credentials Secret the CLI made for s3loc outlives it: %v", err)
	}
	if keys := bucketKeys(t, srv, "flotilla-rt", prefix+"/backups/s3-rt-2/"); len(keys) != 3 {
		t.Errorf("after a forced delete of its location, the bucket holds %q of s3-rt-2, want its 3 objects", keys)
	}
}

// createS3Location adds an s3 location on srv's bucket through the CLI.
func createS3Location(t *testing.T, name string, srv *s3server.Server, bucket, prefix string) {
	t.Helper()
	args := []string{"backup-location", "create", name, "--type", "s3", "--endpoint", srv.Endpoint, "--bucket", bucket,
		"--region", srv.Region, "--path-style", "--access-key-id", srv.AccessKey, "--secret-access-key", srv.SecretKey}
	if prefix != "" {
		args = append(args, "--prefix", prefix)
	}
	if out := flotilla(t, args...); !strings.Contains(out, "backup location "+name+" created") {
		t.Errorf("backup-location create printed %q", out)
	}
}

func locationOf(t *testing.T, name string) *fv1.BackupLocation {
	t.Helper()
	var loc fv1.BackupLocation
	if err := env.Hub.Client.Get(context.Background(), client.ObjectKey{Name: name}, &loc); err != nil {
		t.Fatal(err)
	}
	return &loc
}

// waitLocation waits for the location's Available condition to be want
// and returns it.
func waitLocation(t *testing.T, name string, want metav1.ConditionStatus) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	waitFor(t, 60*time.Second, "location "+name+" Available="+string(want), func(ctx context.Context) (bool, error) {
		cond = meta.FindStatusCondition(locationOf(t, name).Status.Conditions, fv1.ConditionAvailable)
		return cond != nil && cond.Status == want, nil
	})
	return cond
}

// bucketKeys lists the object names under prefix, sorted.
func bucketKeys(t *testing.T, srv *s3server.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range srv.Client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s/%s: %v", bucket, prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func bucketObject(t *testing.T, srv *s3server.Server, bucket, key string) []byte {
	t.Helper()
	o, err := srv.Client(t).GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(o); err != nil {
		t.Fatalf("reading %s/%s: %v", bucket, key, err)
	}
	return buf.Bytes()
}

func putObject(t *testing.T, srv *s3server.Server, bucket, key string, data []byte) {
	t.Helper()
	if _, err := srv.Client(t).PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("putting %s/%s: %v", bucket, key, err)
	}
}

// waitGone waits until the hub has no obj called name.
func waitGone(t *testing.T, obj client.Object, name string) {
	t.Helper()
	waitFor(t, 60*time.Second, name+" deleted from the hub", func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, obj)), nil
	})
}

// deleteBackups deletes backups a test made, for the ones that follow; a
// backup whose location is gone or unreachable may stay.
func deleteBackups(names ...string) {
	for _, n := range names {
		flotillaErr("backup", "delete", n)
	}
}

// namespaceAbsent fails t if member has namespace ns: a refused restore
// must write nothing.
func namespaceAbsent(t *testing.T, member string, ns string) {
	t.Helper()
	if _, err := members[member].Clientset.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s exists in %s (%v), want nothing restored", ns, member, err)
	}
}
