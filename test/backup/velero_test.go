package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv/s3server"
)

// The archive below is what Velero writes for a namespace with a
// ConfigMap and a Deployment, following its documented output file format
// 1.1.0: metadata/version, then each object twice, under
// resources/<resource.group>/ and under the resource's
// <version>-preferredversion/, with "cluster" or "namespaces/<ns>" before
// the file. Objects are stored as the API server returned them, with the
// fields it sets.

// Identities of the objects in the source cluster Velero backed up.
const (
	legacyDeployUID = "5b0c3c8e-1f4e-4d7a-9a51-0e2f3c4d5e61"
	legacyRSUID     = "6c1d4d9f-2a5f-4e8b-8b62-1f3a4d5e6f72"
	legacyRS        = "web-7c5ddbdf54"
	legacyPod       = "web-7c5ddbdf54-q8x2z"
)

func TestRestoreVeleroFormatBackup(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	srv.CreateBucket(t, "velero-old")
	// Velero's bucket exists before the hub is told of it, as when a
	// fleet moves from Velero to Flotilla.
	putVeleroBackup(t, srv, "velero-old", "cluster-a", "old-1", veleroArchive(t, legacyItems(t)))

	createS3Location(t, "velero-old", srv, "velero-old", "cluster-a")
	t.Cleanup(func() { flotillaErr("backup-location", "delete", "velero-old", "--force") })
	waitLocation(t, "velero-old", metav1.ConditionTrue)
	waitFor(t, 30*time.Second, "velero-old lists old-1 as unknown to the hub", func(context.Context) (bool, error) {
		u := locationOf(t, "velero-old").Status.Unknown
		return len(u) == 1 && u[0] == "old-1", nil
	})
	out := flotilla(t, "restore", "create", "--from-location", "velero-old")
	if !strings.Contains(out, "backups in location velero-old that the hub does not know") || !strings.Contains(out, "\n  old-1\n") ||
		!strings.Contains(out, "flotilla restore create NAME --from-location velero-old --backup BACKUP --cluster CLUSTER") {
		t.Errorf("restore create --from-location printed:\n%s", out)
	}

	// A backup Velero did not finish is not restored.
	failed := bytes.Replace(veleroBackupJSON(t, "old-failed"), []byte(`"phase":"Completed"`), []byte(`"phase":"Failed"`), 1)
	putObject(t, srv, "velero-old", "cluster-a/backups/old-failed/old-failed.tar.gz", veleroArchive(t, legacyItems(t)))
	putObject(t, srv, "velero-old", "cluster-a/backups/old-failed/velero-backup.json", failed)
	r := failedRestore(t, "adopt-failed", "--from-location", "velero-old", "--backup", "old-failed", "--cluster", "dst")
	if msg := jobText(r.Status.JobProgress); !strings.Contains(msg, "is Failed in its velero-backup.json") {
		t.Errorf("restore of a failed Velero backup says: %s", msg)
	}

	out = flotillaDone(t, "restore", "create", "adopt", "--from-location", "velero-old", "--backup", "old-1", "--cluster", "dst")
	if !strings.Contains(out, "restore adopt created") {
		t.Errorf("restore create printed %q", out)
	}
	// The namespace, the ConfigMap and the Deployment are restored; the
	// ReplicaSet, its pod and kube-root-ca.crt are the cluster's own.
	r = restoreOf(t, "adopt")
	if r.Status.Phase != fv1.PhaseCompleted || r.Status.Errors != 0 || r.Status.ItemsDone != 3 || r.Status.ItemsSkipped != 3 {
		t.Fatalf("restore status: %+v", r.Status)
	}
	dst := members["dst"].Clientset
	cm, err := dst.CoreV1().ConfigMaps("legacy").Get(ctx, "cm1", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hello from velero" || cm.Labels["app"] != "legacy-web" {
		t.Errorf("cm1 in dst: %v %v", cm, err)
	}
	if root, err := dst.CoreV1().ConfigMaps("legacy").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err == nil && strings.Contains(root.Data["ca.crt"], "FROM-THE-OLD-CLUSTER") {
		t.Errorf("kube-root-ca.crt was restored from the archive")
	}
	ns, err := dst.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil || ns.Labels["team"] != "old" || ns.UID == "a0d1e2f3-0000-4000-8000-000000000001" {
		t.Errorf("namespace legacy in dst: %+v %v", ns, err)
	}

	waitFor(t, 60*time.Second, "the restored Deployment available in dst", deploymentAvailable(dst.AppsV1().Deployments("legacy"), "web"))
	d, err := dst.AppsV1().Deployments("legacy").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers
	if *d.Spec.Replicas != 2 || len(c) != 1 || c[0].Image != "example.com/legacy-web:2.1" || c[0].Ports[0].ContainerPort != 8080 ||
		d.Spec.Template.Labels["app"] != "legacy-web" || d.Spec.Template.Annotations["legacy/owner"] != "ops" {
		t.Errorf("restored Deployment spec: %+v", d.Spec)
	}
	if d.UID == legacyDeployUID || d.Generation != 1 || time.Since(d.CreationTimestamp.Time) > 10*time.Minute || len(d.ManagedFields) == 0 ||
		d.ManagedFields[0].Manager == "kubectl-client-side-apply" {
		t.Errorf("restored Deployment keeps the source's server-set metadata: uid %s, generation %d, created %s, managed by %+v",
			d.UID, d.Generation, d.CreationTimestamp, d.ManagedFields)
	}

	// The archive's ReplicaSet and pod were not restored: the pods are the
	// new Deployment's own, through a ReplicaSet it made.
	if _, err := dst.CoreV1().Pods("legacy").Get(ctx, legacyPod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the archive's ReplicaSet-owned pod %s was restored: %v", legacyPod, err)
	}
	if _, err := dst.AppsV1().ReplicaSets("legacy").Get(ctx, legacyRS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the archive's ReplicaSet %s was restored: %v", legacyRS, err)
	}
	pods, err := dst.CoreV1().Pods("legacy").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods in dst's legacy: %d, want the Deployment's 2 (%v)", len(pods.Items), err)
	}
	for _, p := range pods.Items {
		owner := metav1.GetControllerOf(&p)
		if owner == nil || owner.Kind != "ReplicaSet" || owner.UID == legacyRSUID {
			t.Errorf("pod %s is owned by %+v, want a ReplicaSet of the restored Deployment", p.Name, owner)
			continue
		}
		rs, err := dst.AppsV1().ReplicaSets("legacy").Get(ctx, owner.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("pod %s's ReplicaSet: %v", p.Name, err)
		} else if o := metav1.GetControllerOf(rs); o == nil || o.UID != d.UID {
			t.Errorf("ReplicaSet %s is owned by %+v, want Deployment web %s", rs.Name, o, d.UID)
		}
	}
}

// putVeleroBackup stores archive in bucket as Velero lays a backup out
// under its prefix: the archive and velero-backup.json beside it.
func putVeleroBackup(t *testing.T, srv *s3server.Server, bucket, prefix, name string, archive []byte) {
	t.Helper()
	dir := "backups/" + name
	if prefix != "" {
		dir = prefix + "/" + dir
	}
	putObject(t, srv, bucket, dir+"/"+name+".tar.gz", archive)
	putObject(t, srv, bucket, dir+"/velero-backup.json", veleroBackupJSON(t, name))
}

// veleroBackupJSON is the velero.io/v1 Backup Velero stores beside an
// archive, with the status of a completed backup.
func veleroBackupJSON(t *testing.T, name string) []byte {
	t.Helper()
	started := time.Now().Add(-48 * time.Hour).UTC()
	ts := func(d time.Duration) string { return started.Add(d).Format(time.RFC3339) }
	return mustJSON(t, map[string]any{
		"apiVersion": "velero.io/v1",
		"kind":       "Backup",
		"metadata": map[string]any{
			"name": name, "namespace": "velero", "uid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "resourceVersion": "48213",
			"creationTimestamp": ts(0), "generation": 5,
			"labels": map[string]any{"velero.io/storage-location": "default"},
		},
		"spec": map[string]any{
			"includedNamespaces": []any{"legacy"}, "ttl": "720h0m0s", "storageLocation": "default",
			"snapshotVolumes": false, "defaultVolumesToFsBackup": false, "itemOperationTimeout": "4h0m0s",
		},
		"status": map[string]any{
			"version": 1, "formatVersion": "1.1.0", "phase": "Completed",
			"startTimestamp": ts(0), "completionTimestamp": ts(3 * time.Second), "expiration": ts(720 * time.Hour),
			"progress": map[string]any{"totalItems": 6, "itemsBackedUp": 6},
		},
	})
}

// veleroFile is one file of an archive.
type veleroFile struct {
	name string
	data []byte
}

// veleroArchive is a gzipped tar of metadata/version (1.1.0) and files,
// every one a regular file as Velero writes them.
func veleroArchive(t *testing.T, files []veleroFile) []byte {
	t.Helper()
	return tarGz(t, append([]veleroFile{{"metadata/version", []byte("1.1.0\n")}}, files...))
}

func tarGz(t *testing.T, files []veleroFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Size: int64(len(f.data)), Mode: 0o755, Typeflag: tar.TypeReg, ModTime: time.Now()}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// veleroItem is an object's two copies in format 1.1.0: un-versioned and
// under its preferred version. gr is resource.group ("configmaps",
// "deployments.apps"); namespace "" is a cluster-scoped object.
func veleroItem(t *testing.T, gr, version, namespace string, obj map[string]any) []veleroFile {
	t.Helper()
	scope := "cluster"
	if namespace != "" {
		scope = "namespaces/" + namespace
	}
	name := obj["metadata"].(map[string]any)["name"].(string)
	data := mustJSON(t, obj)
	return []veleroFile{
		{"resources/" + gr + "/" + scope + "/" + name + ".json", data},
		{"resources/" + gr + "/" + version + "-preferredversion/" + scope + "/" + name + ".json", data},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serverMeta is metadata as an API server returns it: uid, resourceVersion,
// creationTimestamp and managedFields set.
func serverMeta(name, namespace, uid string, extra map[string]any) map[string]any {
	m := map[string]any{
		"name": name, "uid": uid, "resourceVersion": "31337", "creationTimestamp": "2025-03-14T09:26:53Z",
		"managedFields": []any{map[string]any{
			"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
			"time": "2025-03-14T09:26:53Z", "fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:metadata": map[string]any{}},
		}},
	}
	if namespace != "" {
		m["namespace"] = namespace
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// legacyItems is namespace legacy of an old cluster as Velero backed it up.
func legacyItems(t *testing.T) []veleroFile {
	t.Helper()
	podSpec := func(nodeName string) map[string]any {
		s := map[string]any{
			"containers": []any{map[string]any{
				"name": "web", "image": "example.com/legacy-web:2.1", "imagePullPolicy": "IfNotPresent",
				"ports":     []any{map[string]any{"containerPort": 8080, "protocol": "TCP"}},
				"resources": map[string]any{}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
			}},
			"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
			"securityContext": map[string]any{}, "schedulerName": "default-scheduler",
		}
		if nodeName != "" {
			s["nodeName"] = nodeName
		}
		return s
	}
	controller := func(kind, name, uid string) []any {
		return []any{map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}}
	}
	var files []veleroFile
	files = append(files, veleroItem(t, "namespaces", "v1", "", map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": serverMeta("legacy", "", "a0d1e2f3-0000-4000-8000-000000000001", map[string]any{
			"labels": map[string]any{"kubernetes.io/metadata.name": "legacy", "team": "old"},
		}),
		"spec":   map[string]any{"finalizers": []any{"kubernetes"}},
		"status": map[string]any{"phase": "Active"},
	})...)
	files = append(files, veleroItem(t, "configmaps", "v1", "legacy", map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": serverMeta("cm1", "legacy", "b1e2f3a4-0000-4000-8000-000000000002", map[string]any{"labels": map[string]any{"app": "legacy-web"}}),
		"data":     map[string]any{"greeting": "hello from velero"},
	})...)
	files = append(files, veleroItem(t, "configmaps", "v1", "legacy", map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": serverMeta("kube-root-ca.crt", "legacy", "c2f3a4b5-0000-4000-8000-000000000003", nil),
		"data":     map[string]any{"ca.crt": "-----BEGIN CERTIFICATE-----\nFROM-THE-OLD-CLUSTER\n-----END CERTIFICATE-----\n"},
	})...)
	files = append(files, veleroItem(t, "deployments.apps", "v1", "legacy", map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": serverMeta("web", "legacy", legacyDeployUID, map[string]any{
			"generation": 3, "labels": map[string]any{"app": "legacy-web"},
			"annotations": map[string]any{"deployment.kubernetes.io/revision": "3"},
		}),
		"spec": map[string]any{
			"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "legacy-web"}},
			"template": map[string]any{
				"metadata": map[string]any{"creationTimestamp": nil, "labels": map[string]any{"app": "legacy-web"}, "annotations": map[string]any{"legacy/owner": "ops"}},
				"spec":     podSpec(""),
			},
			"strategy":             map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": "25%", "maxSurge": "25%"}},
			"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
		},
		"status": map[string]any{
			"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
			"conditions": []any{map[string]any{
				"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
				"lastUpdateTime": "2025-03-14T09:27:10Z", "lastTransitionTime": "2025-03-14T09:27:10Z",
			}},
		},
	})...)
	files = append(files, veleroItem(t, "replicasets.apps", "v1", "legacy", map[string]any{
		"apiVersion": "apps/v1", "kind": "ReplicaSet",
		"metadata": serverMeta(legacyRS, "legacy", legacyRSUID, map[string]any{
			"labels":          map[string]any{"app": "legacy-web", "pod-template-hash": "7c5ddbdf54"},
			"ownerReferences": controller("Deployment", "web", legacyDeployUID),
		}),
		"spec": map[string]any{
			"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "legacy-web", "pod-template-hash": "7c5ddbdf54"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "legacy-web", "pod-template-hash": "7c5ddbdf54"}},
				"spec":     podSpec(""),
			},
		},
		"status": map[string]any{"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 1},
	})...)
	files = append(files, veleroItem(t, "pods", "v1", "legacy", map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": serverMeta(legacyPod, "legacy", "d3a4b5c6-0000-4000-8000-000000000004", map[string]any{
			"generateName":    legacyRS + "-",
			"labels":          map[string]any{"app": "legacy-web", "pod-template-hash": "7c5ddbdf54"},
			"ownerReferences": controller("ReplicaSet", legacyRS, legacyRSUID),
		}),
		"spec":   podSpec("old-node-3"),
		"status": map[string]any{"phase": "Running", "podIP": "10.244.3.17", "hostIP": "10.0.0.3", "startTime": "2025-03-14T09:27:01Z"},
	})...)
	return files
}
