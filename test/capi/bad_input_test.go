package capi_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/provider/clusterapi"
)

// capiHubCluster is a hub Cluster the Cluster API provider makes from
// ClusterClass class with the management kubeconfig in Secret secret.
func capiHubCluster(name, secret, class, poolClass string) *fv1.Cluster {
	return &fv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fv1.ClusterSpec{Group: fv1.DefaultName, Lifecycle: &fv1.ClusterLifecycle{
			Provider:   fv1.ProviderClusterAPI,
			Version:    "v1.36.3",
			ClusterAPI: &fv1.ClusterAPITopology{KubeconfigSecret: secret, Namespace: fleetNS, Class: class},
			NodePools:  []fv1.NodePool{{Name: "workers", Replicas: 1, Class: poolClass}},
		}},
	}
}

func hubSecret(t *testing.T, name string, kubeconfig []byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flotilla-system"}, Data: map[string][]byte{"value": kubeconfig}}
	if err := env.Hub.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// waitStepError waits until the lifecycle of cluster name says why its
// step failed: the Ready condition, False, with a message.
func waitStepError(t *testing.T, name string) *fv1.Cluster {
	t.Helper()
	var c *fv1.Cluster
	waitFor(t, 30*time.Second, name+" saying why it is not made", func(ctx context.Context) (bool, error) {
		var err error
		c, err = hubCluster(ctx, name)
		return err == nil && c.Status.Lifecycle != nil && readyMessage(c.Status.Lifecycle) != "", err
	})
	return c
}

// TestBadInput: what is wrong is said on the cluster's Ready condition,
// with what to do; clusters never made are deleted at once.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	workloadKC, err := os.ReadFile(workload.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	hubSecret(t, "dead", deadKubeconfig(t))
	hubSecret(t, "no-capi", workloadKC)
	for _, tc := range []struct {
		name, secret, class, poolClass string
		want                           []string
	}{
		{name: "bad-secret", secret: "absent", class: class, poolClass: workerClass,
			want: []string{"kubeconfig Secret flotilla-system/absent does not exist on the hub", "create secret generic absent --from-file=value="}},
		{name: "bad-reach", secret: "dead", class: class, poolClass: workerClass,
			want: []string{"cannot reach the management cluster at https://127.0.0.1:1 (kubeconfig in the hub Secret flotilla-system/dead)"}},
		{name: "bad-capi", secret: "no-capi", class: class, poolClass: workerClass,
			want: []string{"does not serve Cluster API's clusterclasses cluster.x-k8s.io/v1beta2", "clusterctl init"}},
		{name: "bad-class", secret: mgmtSecret, class: "no-such-class", poolClass: workerClass,
			want: []string{"the ClusterClass no-such-class does not exist in namespace fleet of the management cluster", "its ClusterClasses there: quick-start"}},
		{name: "bad-pool", secret: mgmtSecret, class: class, poolClass: "gpu",
			want: []string{`node pool workers needs the machine deployment class "gpu", which ClusterClass fleet/quick-start does not have (its classes: default-worker)`}},
	} {
		if err := env.Hub.Client.Create(ctx, capiHubCluster(tc.name, tc.secret, tc.class, tc.poolClass)); err != nil {
			t.Fatal(err)
		}
		c := waitStepError(t, tc.name)
		msg := readyMessage(c.Status.Lifecycle)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: the Ready condition does not say %q: %s", tc.name, w, msg)
			}
		}
		if _, err := capiCluster(ctx, fleetNS, tc.name); !apierrors.IsNotFound(err) {
			t.Errorf("%s: a Cluster API Cluster was made: %v", tc.name, err)
		}
		// Nothing was made: deleted at once, whatever the Secret says.
		if err := env.Hub.Client.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, tc.name+" deleted", func(ctx context.Context) (bool, error) {
			_, err := hubCluster(ctx, tc.name)
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
	}

	// A Cluster API Cluster deleted behind Flotilla's back is not made again.
	const name = "gone-behind"
	if err := env.Hub.Client.Create(ctx, capiHubCluster(name, mgmtSecret, class, workerClass)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Cluster API Cluster", func(ctx context.Context) (bool, error) {
		c, err := hubCluster(ctx, name)
		return err == nil && c.Annotations[clusterapi.AnnotationCluster] == fleetNS+"/"+name, err
	})
	if err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(fleetNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c := waitLifecycle(t, name, fv1.LifecycleFailed, nil)
	if msg := readyMessage(c.Status.Lifecycle); !strings.Contains(msg, "deleted outside Flotilla") {
		t.Fatalf("Failed without saying why: %s", msg)
	}
	if _, err := capiCluster(ctx, fleetNS, name); !apierrors.IsNotFound(err) {
		t.Fatalf("the Cluster API Cluster was made again: %v", err)
	}
	flotilla(t, "cluster", "delete", name, "--wait", "--timeout", "30s")

	// A Cluster API Cluster of that name that Flotilla did not make is not
	// taken over.
	createCAPICluster(t, fleetNS, "theirs")
	if err := env.Hub.Client.Create(ctx, capiHubCluster("theirs", mgmtSecret, class, workerClass)); err != nil {
		t.Fatal(err)
	}
	c = waitStepError(t, "theirs")
	if msg := readyMessage(c.Status.Lifecycle); !strings.Contains(msg, "already has a Cluster API Cluster fleet/theirs that Flotilla did not make") {
		t.Fatalf("took over another's cluster? %s", msg)
	}
	flotilla(t, "cluster", "delete", "theirs", "--wait", "--timeout", "30s")
	if _, err := capiCluster(ctx, fleetNS, "theirs"); err != nil {
		t.Fatalf("deleting the hub cluster deleted a Cluster API Cluster Flotilla did not make: %v", err)
	}

	// The CLI: the clusterapi flags go together, and with that provider only.
	if _, err := flotillaErr("cluster", "create", "x", "--provider", "clusterapi", "--capi-class", class); err == nil || !strings.Contains(err.Error(), "--capi-kubeconfig-secret is required with --provider clusterapi") {
		t.Fatalf("create without the management Secret: %v", err)
	}
	if _, err := flotillaErr("cluster", "create", "x", "--provider", "clusterapi", "--capi-kubeconfig-secret", mgmtSecret); err == nil || !strings.Contains(err.Error(), "--capi-class is required") {
		t.Fatalf("create without a class: %v", err)
	}
	if _, err := flotillaErr("cluster", "create", "x", "--capi-class", class); err == nil || !strings.Contains(err.Error(), "--capi-class is for --provider clusterapi only") {
		t.Fatalf("a clusterapi flag with the local provider: %v", err)
	}
}
