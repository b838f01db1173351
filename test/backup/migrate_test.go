package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// shop is a namespace with a little of everything a restore must get right.
const shop = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {ready: {type: boolean}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {app: shop}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: shop}}
data: {color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unlabelled, namespace: shop}
data: {x: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop, labels: {app: shop}}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: shop-sa, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata:
  name: shop-sa-token
  namespace: shop
  annotations: {kubernetes.io/service-account.name: shop-sa}
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: shop-sa, namespace: shop}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: shop}}
spec:
  selector: {app: shop}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: shop}}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: web, image: example.com/web:1}]
`

const widget = `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: shop, labels: {app: shop}}
spec: {size: 3}
`

// setupShop applies shop and its widget to src once.
func setupShop(t *testing.T) {
	t.Helper()
	apply(t, members["src"], shop)
	waitFor(t, 30*time.Second, "the Widget CRD served", func(ctx context.Context) (bool, error) {
		_, err := members["src"].Clientset.Discovery().ServerResourcesForGroupVersion("example.com/v1")
		return err == nil, nil
	})
	apply(t, members["src"], widget)
	waitFor(t, 60*time.Second, "web available in src", deploymentAvailable(members["src"].Clientset.AppsV1().Deployments("shop"), "web"))
}

func deploymentAvailable(deps interface {
	Get(context.Context, string, metav1.GetOptions) (*appsv1.Deployment, error)
}, name string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == *d.Spec.Replicas, nil
			}
		}
		return false, nil
	}
}

func TestMigrateNamespaceToAnotherCluster(t *testing.T) {
	setupShop(t)
	ctx := context.Background()

	out := flotilla(t, "backup", "create", "shop-1", "--cluster", "src", "--namespaces", "shop", "--include-cluster-resources", "yes", "--wait")
	if !strings.Contains(out, "backup shop-1 created") {
		t.Errorf("backup create printed %q", out)
	}
	b := backupOf(t, "shop-1")
	if b.Status.Phase != fv1.PhaseCompleted || b.Status.Errors != 0 || b.Status.ItemsDone < 10 || b.Status.Size == 0 ||
		!strings.HasPrefix(b.Status.Checksum, "sha256:") || b.Status.StorageLocation != fv1.DefaultLocation || b.Status.Expiration == nil {
		t.Fatalf("backup status: %+v", b.Status)
	}
	if d := b.Status.Expiration.Sub(b.CreationTimestamp.Time); d != 30*24*time.Hour {
		t.Errorf("expiration %s after creation, want the default 720h", d)
	}
	checkHubArchive(t, "shop-1")
	file := filepath.Join(t.TempDir(), "shop-1.tar.gz")
	if out := flotilla(t, "backup", "download", "shop-1", "-o", file); !strings.Contains(out, "checksum verified") {
		t.Errorf("download printed %q", out)
	}
	if st, err := os.Stat(file); err != nil || st.Size() != b.Status.Size {
		t.Errorf("downloaded archive: %v, want %d bytes", err, b.Status.Size)
	}
	if _, err := flotillaErr("backup", "download", "nosuch", "-o", file+".2"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("download of a backup that does not exist: %v", err)
	}

	out = flotilla(t, "restore", "create", "shop-1-to-dst", "--from-backup", "shop-1", "--cluster", "dst", "--namespace-mapping", "shop:shop-copy", "--wait")
	if !strings.Contains(out, "restore shop-1-to-dst created") {
		t.Errorf("restore create printed %q", out)
	}
	r := restoreOf(t, "shop-1-to-dst")
	if r.Status.Phase != fv1.PhaseCompleted || r.Status.Errors != 0 || r.Status.ItemsDone == 0 {
		t.Fatalf("restore status: %+v", r.Status)
	}
	dst := members["dst"].Clientset
	waitFor(t, 60*time.Second, "web available in dst's shop-copy", deploymentAvailable(dst.AppsV1().Deployments("shop-copy"), "web"))

	cm, err := dst.CoreV1().ConfigMaps("shop-copy").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || cm.Data["color"] != "blue" {
		t.Errorf("settings in shop-copy: %v %v", cm, err)
	}
	sec, err := dst.CoreV1().Secrets("shop-copy").Get(ctx, "creds", metav1.GetOptions{})
	if err != nil || string(sec.Data["password"]) != "hunter2" {
		t.Errorf("creds in shop-copy: %v", err)
	}
	if _, err := dst.CoreV1().Secrets("shop-copy").Get(ctx, "shop-sa-token", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a service account token Secret was restored: %v", err)
	}
	if _, err := dst.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace shop exists in dst, want it mapped to shop-copy only: %v", err)
	}
	rb, err := dst.RbacV1().RoleBindings("shop-copy").Get(ctx, "reader", metav1.GetOptions{})
	if err != nil || rb.Subjects[0].Namespace != "shop-copy" {
		t.Errorf("rolebinding reader in shop-copy: %+v %v", rb, err)
	}
	srcSvc, _ := members["src"].Clientset.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	svc, err := dst.CoreV1().Services("shop-copy").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP == "" || svc.UID == srcSvc.UID {
		t.Errorf("service web in shop-copy: %+v %v", svc, err)
	}
	w := kubectl(t, members["dst"], "get", "widgets.example.com", "-n", "shop-copy", "w1", "-o", "jsonpath={.spec.size}")
	if w != "3" {
		t.Errorf("widget w1 in shop-copy: size %q", w)
	}
	// The pods come from the restored Deployment's ReplicaSet, not the
	// backup: exactly the Deployment's two.
	pods, err := dst.CoreV1().Pods("shop-copy").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Errorf("pods in shop-copy: %d, want 2 (%v)", len(pods.Items), err)
	}

	// The same restore again changes nothing and says so: every object exists.
	flotilla(t, "restore", "create", "shop-1-again", "--from-backup", "shop-1", "--cluster", "dst", "--namespace-mapping", "shop:shop-copy", "--wait")
	if again := restoreOf(t, "shop-1-again"); again.Status.ItemsDone != 0 || again.Status.ItemsSkipped == 0 {
		t.Errorf("second restore: %d restored, %d skipped; want 0 restored", again.Status.ItemsDone, again.Status.ItemsSkipped)
	}
	// With the update policy, an object changed in dst is patched back.
	if _, err := dst.CoreV1().ConfigMaps("shop-copy").Patch(ctx, "settings", "application/merge-patch+json", []byte(`{"data":{"color":"red"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	flotilla(t, "restore", "create", "shop-1-update", "--from-backup", "shop-1", "--cluster", "dst", "--namespace-mapping", "shop:shop-copy",
		"--existing-resource-policy", "update", "--resources", "configmaps", "--wait")
	if cm, _ := dst.CoreV1().ConfigMaps("shop-copy").Get(ctx, "settings", metav1.GetOptions{}); cm.Data["color"] != "blue" {
		t.Errorf("settings after an update restore: %v", cm.Data)
	}
}

// checkHubArchive checks the hub location holds backup name as Velero lays
// it out: the archive, with Velero's paths inside, the resource list and
// the metadata.
func checkHubArchive(t *testing.T, name string) {
	t.Helper()
	dir := filepath.Join(env.Hub.Dir, "backups", fv1.DefaultLocation, "backups", name)
	for _, f := range []string{name + ".tar.gz", "velero-backup.json", name + "-resource-list.json.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("hub location: %v", err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "uploading") {
			t.Errorf("hub location keeps the upload %s", e.Name())
		}
	}
	f, err := os.Open(filepath.Join(dir, name+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = true
	}
	for _, want := range []string{
		"metadata/version",
		"resources/configmaps/namespaces/shop/settings.json",
		"resources/configmaps/v1-preferredversion/namespaces/shop/settings.json",
		"resources/deployments.apps/namespaces/shop/web.json",
		"resources/widgets.example.com/namespaces/shop/w1.json",
		"resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.example.com.json",
		"resources/namespaces/cluster/shop.json",
	} {
		if !seen[want] {
			t.Errorf("archive lacks %s", want)
		}
	}
	for n := range seen {
		if strings.HasPrefix(n, "resources/events") || strings.HasPrefix(n, "resources/nodes") || strings.Contains(n, "flotilla.dev") {
			t.Errorf("archive holds %s, which is never backed up", n)
		}
	}
}
