package capi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/provider/clusterapi"
	"flotilla.dev/flotilla/internal/testenv"
)

// capiModule is the Cluster API release whose CRDs the management cluster
// serves.
const capiModule = "sigs.k8s.io/cluster-api@v1.14.2"

var (
	env *testenv.Env
	bin string
	tmp string
	// mgmt is the management cluster, workload the cluster Cluster API
	// "made"; mgmtDyn reads and writes Cluster API's objects on mgmt.
	mgmt, workload *testenv.Process
	mgmtDyn        dynamic.Interface
)

const (
	// mgmtSecret is the hub Secret with mgmt's kubeconfig.
	mgmtSecret = "mgmt"
	// fleetNS holds the clusters the provider makes, and the ClusterClass.
	fleetNS = "fleet"
	class   = "quick-start"
	// workerClass is the ClusterClass's machine deployment class.
	workerClass = "default-worker"
)

// TestMain starts a hub and two local clusters, mgmt and workload, and
// installs Cluster API's CRDs and a ClusterClass into mgmt. Everything is
// stopped by PID when the tests end, failed or not.
func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if bin, err = testenv.Binary(); err != nil {
		return 1, err
	}
	if tmp, err = os.MkdirTemp("", "flotilla-capi-"); err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	crds, err := capiCRDs()
	if err != nil {
		return 1, err
	}
	if env, err = testenv.Start(testenv.Options{Clusters: 2, Nodes: 1}); err != nil {
		return 1, err
	}
	defer env.Stop()
	mgmt, workload = env.Clusters[0], env.Clusters[1]
	dynCfg := rest.CopyConfig(mgmt.Config)
	dynCfg.WarningHandler = rest.NoWarnings{} // Cluster API's finalizer name draws one
	if mgmtDyn, err = dynamic.NewForConfig(dynCfg); err != nil {
		return 1, err
	}
	ctx := context.Background()
	if err := installCRDs(ctx, crds); err != nil {
		return 1, err
	}
	kc, err := os.ReadFile(mgmt.Kubeconfig)
	if err != nil {
		return 1, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: mgmtSecret, Namespace: "flotilla-system"},
		Data:       map[string][]byte{"value": kc},
	}
	if err := env.Hub.Client.Create(ctx, secret); err != nil {
		return 1, err
	}
	for _, ns := range []string{fleetNS, "imported", "broken"} {
		if err := mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return 1, err
		}
	}
	if _, err := mgmtDyn.Resource(clusterapi.ClusterClassesResource).Namespace(fleetNS).Create(ctx, clusterClass(class, workerClass), metav1.CreateOptions{}); err != nil {
		return 1, fmt.Errorf("creating the ClusterClass: %w", err)
	}
	return m.Run(), nil
}

// capiCRDs are the files of Cluster API's core CRDs the tests need, from
// the module as the Go command downloads it (into its module cache, not
// this module's go.mod).
func capiCRDs() ([]string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", capiModule)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %s: %v: %s%s", capiModule, err, out, stderr.String())
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, err
	}
	if mod.Error != "" || mod.Dir == "" {
		return nil, fmt.Errorf("go mod download %s: %s", capiModule, mod.Error)
	}
	base := filepath.Join(mod.Dir, "core", "config", "crd", "bases")
	var files []string
	for _, r := range []string{"clusterclasses", "clusters", "machinedeployments"} {
		files = append(files, filepath.Join(base, "cluster.x-k8s.io_"+r+".yaml"))
	}
	return files, nil
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs in files on mgmt and waits until they are
// established.
func installCRDs(ctx context.Context, files []string) error {
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err == io.EOF {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if u.Object == nil {
				continue
			}
			if _, err := mgmtDyn.Resource(crdResource).Create(ctx, &u, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating CRD %s: %w", u.GetName(), err)
			}
			names = append(names, u.GetName())
		}
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			u, err := mgmtDyn.Resource(crdResource).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
}

// clusterClass is a ClusterClass with one machine deployment class; the
// templates it names need not exist, as no controller reads them.
func clusterClass(name string, workerClasses ...string) *unstructured.Unstructured {
	ref := func(group, kind, name string) map[string]any {
		return map[string]any{"templateRef": map[string]any{"apiVersion": group + "/v1beta2", "kind": kind, "name": name}}
	}
	var mds []any
	for _, wc := range workerClasses {
		mds = append(mds, map[string]any{
			"class":          wc,
			"bootstrap":      ref("bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate", name+"-"+wc),
			"infrastructure": ref("infrastructure.cluster.x-k8s.io", "DockerMachineTemplate", name+"-"+wc),
		})
	}
	cp := ref("controlplane.cluster.x-k8s.io", "KubeadmControlPlaneTemplate", name+"-control-plane")
	cp["machineInfrastructure"] = ref("infrastructure.cluster.x-k8s.io", "DockerMachineTemplate", name+"-control-plane")
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2",
		"kind":       "ClusterClass",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"controlPlane":   cp,
			"infrastructure": ref("infrastructure.cluster.x-k8s.io", "DockerClusterTemplate", name),
			"workers":        map[string]any{"machineDeployments": mds},
		},
	}}
}

// flotilla runs the binary against the hub and returns its stdout; it
// fails the test with stderr on a non-zero exit.
func flotilla(t *testing.T, args ...string) string {
	t.Helper()
	out, err := flotillaErr(args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func flotillaErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "FLOTILLA_HUB_KUBECONFIG="+env.Hub.Kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

// hubCluster reads cluster name from the hub.
func hubCluster(ctx context.Context, name string) (*fv1.Cluster, error) {
	var c fv1.Cluster
	return &c, env.Hub.Client.Get(ctx, client.ObjectKey{Name: name}, &c)
}

// lifecycleLine is a hub cluster's lifecycle status, for failure messages.
func lifecycleLine(c *fv1.Cluster) string {
	st := c.Status.Lifecycle
	if st == nil {
		return "no lifecycle status"
	}
	s := fmt.Sprintf("phase=%s progress=%q generation=%d/%d", st.Phase, st.Progress, st.ObservedGeneration, c.Generation)
	for _, cond := range st.Conditions {
		s += fmt.Sprintf(" %s=%s(%s: %s)", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	return s
}

// waitLifecycle waits until cluster name's lifecycle status, for its
// current generation, has phase and satisfies ok (nil: any).
func waitLifecycle(t *testing.T, name string, phase fv1.LifecyclePhase, ok func(*fv1.LifecycleStatus) bool) *fv1.Cluster {
	t.Helper()
	var c *fv1.Cluster
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		if c, err = hubCluster(ctx, name); err != nil {
			return false, nil
		}
		st := c.Status.Lifecycle
		return st != nil && st.ObservedGeneration == c.Generation && st.Phase == phase && (ok == nil || ok(st)), nil
	})
	if err != nil {
		line := "not found"
		if c != nil {
			line = lifecycleLine(c)
		}
		t.Fatalf("cluster %s not %s: %s\nthe hub's log of it:\n%s", name, phase, line, hubLogOf(name))
	}
	return c
}

// hubLogOf is the last lines of the hub's log that name cluster name.
func hubLogOf(name string) string {
	var lines []string
	for _, l := range strings.Split(env.Hub.Log(), "\n") {
		if strings.Contains(l, `"`+name+`"`) || strings.Contains(l, "/"+name) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// readyMessage is the message of a lifecycle's Ready condition.
func readyMessage(st *fv1.LifecycleStatus) string {
	for _, c := range st.Conditions {
		if c.Type == fv1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

// capiCluster reads Cluster API Cluster ns/name from mgmt.
func capiCluster(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	return mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// setCAPIStatus replaces what Cluster API's controllers report of ns/name:
// status, as the Cluster controller writes it.
func setCAPIStatus(t *testing.T, ns, name string, status map[string]any) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		t.Fatal(err)
	}
	// A merge patch replaces lists whole: conditions are as given.
	if _, err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "capi-controller"}, "status"); err != nil {
		t.Fatalf("setting the status of %s/%s: %v", ns, name, err)
	}
}

// condition is a Cluster API v1beta2 condition.
func condition(typ, status, reason, message string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": message, "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
}

// replicas are the counts of status.controlPlane or status.workers, all
// at version.
func replicas(desired, ready int64, version string) map[string]any {
	m := map[string]any{"desiredReplicas": desired, "replicas": desired, "readyReplicas": ready, "availableReplicas": ready, "upToDateReplicas": ready}
	if desired > 0 {
		m["versions"] = []any{map[string]any{"version": version, "replicas": desired}}
	}
	return m
}

// publishKubeconfig creates the Secret in which Cluster API publishes the
// admin kubeconfig of ns/name, with kubeconfig.
func publishKubeconfig(t *testing.T, ns, name string, kubeconfig []byte) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: clusterapi.KubeconfigSecret(name), Namespace: ns, Labels: map[string]string{"cluster.x-k8s.io/cluster-name": name}},
		Type:       "cluster.x-k8s.io/secret",
		Data:       map[string][]byte{"value": kubeconfig},
	}
	if err := mgmt.Client.Create(context.Background(), s); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}
