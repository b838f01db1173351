package backup

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }

// TestLabelSelectedBackup backs up only what carries a label, and restores
// exactly that.
func TestLabelSelectedBackup(t *testing.T) {
	setupShop(t)
	ctx := context.Background()
	flotilla(t, "backup", "create", "shop-labelled", "--cluster", "src", "--namespaces", "shop", "--selector", "app=shop", "--wait")
	if b := backupOf(t, "shop-labelled"); b.Status.Phase != fv1.PhaseCompleted || b.Status.ItemsDone == 0 {
		t.Fatalf("labelled backup: %s with %d items", b.Status.Phase, b.Status.ItemsDone)
	}
	out := flotilla(t, "backup", "describe", "shop-labelled")
	if !strings.Contains(out, "Selector:    app=shop") {
		t.Errorf("describe:\n%s", out)
	}
	// The Widget CRD is not in the backup (cluster-scoped, unlabelled): its
	// custom resources are left out, so the test stands alone.
	flotilla(t, "restore", "create", "labelled-to-dst", "--from-backup", "shop-labelled", "--cluster", "dst", "--namespace-mapping", "shop:shop-sel",
		"--exclude-resources", "widgets.example.com", "--wait")
	dst := members["dst"].Clientset.CoreV1()
	if _, err := dst.ConfigMaps("shop-sel").Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Errorf("labelled ConfigMap not restored: %v", err)
	}
	if _, err := dst.ConfigMaps("shop-sel").Get(ctx, "unlabelled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unlabelled ConfigMap restored: %v", err)
	}
	if _, err := dst.ServiceAccounts("shop-sel").Get(ctx, "shop-sa", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unlabelled ServiceAccount restored: %v", err)
	}
}
