package capi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/provider/clusterapi"
	"flotilla.dev/flotilla/internal/testenv"
)

// TestLifecycle makes a cluster with 'flotilla cluster create --provider
// clusterapi', plays Cluster API making it (status, then the kubeconfig of
// the workload cluster), sees the agent installed and the cluster become
// Healthy, scales, upgrades, fails and recovers it, and deletes it.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	const name = "capi-a"
	out := flotilla(t, "cluster", "create", name, "--provider", "clusterapi",
		"--capi-kubeconfig-secret", mgmtSecret, "--capi-namespace", fleetNS, "--capi-class", class, "--capi-worker-class", workerClass,
		"--version", "v1.36.3", "--nodes", "2")
	if !strings.Contains(out, "cluster "+name+" created") {
		t.Fatalf("create said: %s", out)
	}

	// Flotilla writes the Cluster API Cluster: the topology of the spec.
	var cl *unstructured.Unstructured
	waitFor(t, 30*time.Second, "the Cluster API Cluster", func(ctx context.Context) (bool, error) {
		var err error
		cl, err = capiCluster(ctx, fleetNS, name)
		return err == nil, err
	})
	wantTopology := func(version string, workers int64) map[string]any {
		return map[string]any{
			"classRef":     map[string]any{"name": class},
			"version":      version,
			"controlPlane": map[string]any{"replicas": int64(1)},
			"workers": map[string]any{"machineDeployments": []any{
				map[string]any{"class": workerClass, "name": "workers", "replicas": workers},
			}},
		}
	}
	topology := func(cl *unstructured.Unstructured) map[string]any {
		m, _, _ := unstructured.NestedMap(cl.Object, "spec", "topology")
		return m
	}
	if got := topology(cl); !reflect.DeepEqual(got, wantTopology("v1.36.3", 2)) {
		t.Fatalf("topology:\n got %v\nwant %v", got, wantTopology("v1.36.3", 2))
	}
	if cl.GetLabels()[fv1.LabelCluster] != name {
		t.Fatalf("the Cluster API Cluster is not marked as Flotilla's: labels %v", cl.GetLabels())
	}
	waitLifecycle(t, name, fv1.LifecycleProvisioning, func(st *fv1.LifecycleStatus) bool {
		return st.Progress == "waiting for Cluster API to take the cluster"
	})

	// Cluster API provisions: the endpoint, then machines come up.
	endpoint, _ := json.Marshal(map[string]any{"spec": map[string]any{"controlPlaneEndpoint": map[string]any{"host": "capi-a.example.test", "port": 6443}}})
	if _, err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(fleetNS).Patch(ctx, name, types.MergePatchType, endpoint, metav1.PatchOptions{FieldManager: "capi-controller"}); err != nil {
		t.Fatal(err)
	}
	setCAPIStatus(t, fleetNS, name, map[string]any{
		"phase": "Provisioned",
		"conditions": []any{
			condition("InfrastructureReady", "True", "Ready", ""),
			condition("ControlPlaneInitialized", "True", "Initialized", ""),
			condition("WorkersAvailable", "False", "NotAvailable", "* MachineDeployment capi-a-workers: 0 available replicas, at least 2 required"),
			condition("Available", "False", "NotAvailable", "* WorkersAvailable: MachineDeployment capi-a-workers: 0 available replicas, at least 2 required"),
			condition("TopologyReconciled", "True", "ReconcileSucceeded", ""),
		},
		"controlPlane": replicas(1, 1, "v1.36.3"),
		"workers":      replicas(2, 0, "v1.36.3"),
	})
	c := waitLifecycle(t, name, fv1.LifecycleProvisioning, func(st *fv1.LifecycleStatus) bool { return st.Progress == "1/3 machines ready" })
	if msg := readyMessage(c.Status.Lifecycle); !strings.Contains(msg, "0 available replicas, at least 2 required") {
		t.Fatalf("the Ready condition does not say what Cluster API waits for: %q", msg)
	}
	if ep := c.Status.Lifecycle.Endpoint; ep != "https://capi-a.example.test:6443" {
		t.Fatalf("endpoint %q", ep)
	}

	// Cluster API publishes the kubeconfig: it points at the workload
	// cluster, into which Flotilla installs its agent, once.
	kc, err := os.ReadFile(workload.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	publishKubeconfig(t, fleetNS, name, kc)
	var boot corev1.Secret
	var dep appsv1.Deployment
	waitFor(t, 30*time.Second, "the agent's Deployment and bootstrap Secret in the workload cluster", func(ctx context.Context) (bool, error) {
		if err := workload.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-bootstrap"}, &boot); err != nil {
			return false, err
		}
		return true, workload.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-agent"}, &dep)
	})
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "flotilla:") {
		t.Fatalf("agent image %q", img)
	}
	if got := flotilla(t, "cluster", "kubeconfig", name); got != string(kc) {
		t.Fatalf("'flotilla cluster kubeconfig' printed another kubeconfig than Cluster API's:\n%s", got)
	}

	// Machines ready, Cluster API says Available: Flotilla waits for its agent.
	available := []any{
		condition("InfrastructureReady", "True", "Ready", ""),
		condition("ControlPlaneInitialized", "True", "Initialized", ""),
		condition("ControlPlaneAvailable", "True", "Available", ""),
		condition("WorkersAvailable", "True", "Available", ""),
		condition("Available", "True", "Available", ""),
		condition("TopologyReconciled", "True", "ReconcileSucceeded", ""),
	}
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Provisioned", "conditions": available, "controlPlane": replicas(1, 1, "v1.36.3"), "workers": replicas(2, 2, "v1.36.3")})
	waitLifecycle(t, name, fv1.LifecycleProvisioning, func(st *fv1.LifecycleStatus) bool { return st.Progress == "waiting for the agent" })

	// Simulated nodes run no containers, so the agent Deployment's pod never
	// starts: the agent runs here as a process, with the bootstrap
	// kubeconfig Flotilla put in the cluster, as the pod would.
	dir := filepath.Join(tmp, "agent-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(dir, "bootstrap.kubeconfig")
	if err := os.WriteFile(bootPath, boot.Data["kubeconfig"], 0o600); err != nil {
		t.Fatal(err)
	}
	agent := testenv.AgentProcess(name, workload, dir)
	agent.Args = append(agent.Args, "--bootstrap-kubeconfig", bootPath)
	if err := agent.Run(); err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	c = waitLifecycle(t, name, fv1.LifecycleReady, nil)
	if c.Status.Health != fv1.HealthHealthy {
		t.Fatalf("Ready before Healthy: health %s", c.Status.Health)
	}
	if c.Status.Lifecycle.Progress != "3/3 machines ready" {
		t.Fatalf("progress %q", c.Status.Lifecycle.Progress)
	}
	// Installed once: the bootstrap credential in the cluster is the same.
	var again corev1.Secret
	if err := workload.Client.Get(ctx, client.ObjectKey{Namespace: "flotilla-system", Name: "flotilla-bootstrap"}, &again); err != nil || !bytes.Equal(again.Data["kubeconfig"], boot.Data["kubeconfig"]) {
		t.Fatalf("the agent was installed again (err %v)", err)
	}

	// Scale: a new topology; Scaling until the machines are ready.
	flotilla(t, "cluster", "scale", name, "--nodes", "4")
	waitFor(t, 30*time.Second, "the scaled topology", func(ctx context.Context) (bool, error) {
		cl, err := capiCluster(ctx, fleetNS, name)
		return err == nil && reflect.DeepEqual(topology(cl), wantTopology("v1.36.3", 4)), err
	})
	waitLifecycle(t, name, fv1.LifecycleScaling, func(st *fv1.LifecycleStatus) bool { return st.Progress == "3/5 machines ready" })
	// The pool's MachineDeployment, as the topology controller makes it.
	md := createMachineDeployment(t, name, "workers")
	setMDStatus(t, md, 4, 4, "v1.36.3")
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Provisioned", "conditions": available, "controlPlane": replicas(1, 1, "v1.36.3"), "workers": replicas(4, 4, "v1.36.3")})
	c = waitLifecycle(t, name, fv1.LifecycleReady, func(st *fv1.LifecycleStatus) bool {
		return st.Progress == "5/5 machines ready" && len(st.NodePools) == 1
	})
	if got, want := c.Status.Lifecycle.NodePools[0], (fv1.NodePoolStatus{Name: "workers", Version: "v1.36.3", Replicas: 4, Ready: 4, Updated: 4}); got != want {
		t.Fatalf("pool status %+v, want %+v", got, want)
	}

	// Upgrade: the topology's version; Upgrading while machines run the old one.
	flotilla(t, "cluster", "upgrade", name, "--version", "v1.37.2")
	waitFor(t, 30*time.Second, "the upgraded topology", func(ctx context.Context) (bool, error) {
		cl, err := capiCluster(ctx, fleetNS, name)
		return err == nil && reflect.DeepEqual(topology(cl), wantTopology("v1.37.2", 4)), err
	})
	waitLifecycle(t, name, fv1.LifecycleUpgrading, func(st *fv1.LifecycleStatus) bool { return st.Progress == "0/5 machines at v1.37.2" })
	upgrading := append([]any{}, available[:5]...)
	upgrading = append(upgrading, condition("TopologyReconciled", "False", "ClusterUpgrading", "Cluster is upgrading to v1.37.2\n  * MachineDeployment capi-a-workers pending upgrade to version v1.37.2"))
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Provisioned", "conditions": upgrading, "controlPlane": replicas(1, 1, "v1.37.2"), "workers": replicas(4, 4, "v1.36.3")})
	c = waitLifecycle(t, name, fv1.LifecycleUpgrading, func(st *fv1.LifecycleStatus) bool { return st.Progress == "1/5 machines at v1.37.2" })
	if msg := readyMessage(c.Status.Lifecycle); !strings.Contains(msg, "pending upgrade to version v1.37.2") {
		t.Fatalf("the Ready condition does not carry Cluster API's message: %q", msg)
	}
	setMDStatus(t, md, 4, 4, "v1.37.2")
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Provisioned", "conditions": available, "controlPlane": replicas(1, 1, "v1.37.2"), "workers": replicas(4, 4, "v1.37.2")})
	c = waitLifecycle(t, name, fv1.LifecycleReady, func(st *fv1.LifecycleStatus) bool { return st.NodePools[0].Version == "v1.37.2" })
	if cp := c.Status.Lifecycle.ControlPlane; len(cp) != 1 || cp[0].Version != "v1.37.2" || !cp[0].Ready {
		t.Fatalf("control plane status %+v", cp)
	}

	// Cluster API fails: Failed, with its message; then it recovers.
	failedConds := []any{condition("Available", "False", "NotAvailable", "DockerMachine capi-a-workers-x7k2p: quota of machines exceeded")}
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Failed", "conditions": failedConds, "controlPlane": replicas(1, 1, "v1.37.2"), "workers": replicas(4, 3, "v1.37.2")})
	c = waitLifecycle(t, name, fv1.LifecycleFailed, nil)
	if msg := readyMessage(c.Status.Lifecycle); !strings.Contains(msg, "quota of machines exceeded") {
		t.Fatalf("Failed without Cluster API's message: %q", msg)
	}
	setCAPIStatus(t, fleetNS, name, map[string]any{"phase": "Provisioned", "conditions": available, "controlPlane": replicas(1, 1, "v1.37.2"), "workers": replicas(4, 4, "v1.37.2")})
	waitLifecycle(t, name, fv1.LifecycleReady, nil)

	// Delete: the Cluster API Cluster goes (Cluster API holds it with its
	// finalizer while it deletes the machines), then the hub cluster.
	fin, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": []string{"cluster.cluster.x-k8s.io"}}})
	if _, err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(fleetNS).Patch(ctx, name, types.MergePatchType, fin, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	flotilla(t, "cluster", "delete", name)
	waitFor(t, 30*time.Second, "the Cluster API Cluster being deleted", func(ctx context.Context) (bool, error) {
		cl, err := capiCluster(ctx, fleetNS, name)
		return err == nil && cl.GetDeletionTimestamp() != nil, err
	})
	if _, err := hubCluster(ctx, name); err != nil {
		t.Fatalf("the hub cluster went before the Cluster API Cluster: %v", err)
	}
	unfin, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	if _, err := mgmtDyn.Resource(clusterapi.ClustersResource).Namespace(fleetNS).Patch(ctx, name, types.MergePatchType, unfin, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the hub cluster gone", func(ctx context.Context) (bool, error) {
		_, err := hubCluster(ctx, name)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if _, err := capiCluster(ctx, fleetNS, name); !apierrors.IsNotFound(err) {
		t.Fatalf("the Cluster API Cluster is still there: %v", err)
	}
	if _, err := flotillaErr("cluster", "kubeconfig", name); err == nil {
		t.Fatal("the hub still gives the deleted cluster's kubeconfig")
	}
}

// createMachineDeployment creates the MachineDeployment of pool of cluster
// in the fleet namespace, labelled as Cluster API's topology controller
// labels it.
func createMachineDeployment(t *testing.T, cluster, pool string) *unstructured.Unstructured {
	t.Helper()
	labels := map[string]any{"cluster.x-k8s.io/cluster-name": cluster, "topology.cluster.x-k8s.io/deployment-name": pool}
	ref := func(group, kind string) map[string]any {
		return map[string]any{"apiGroup": group, "kind": kind, "name": cluster + "-" + pool}
	}
	md := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2",
		"kind":       "MachineDeployment",
		"metadata":   map[string]any{"name": cluster + "-" + pool + "-x7k2p", "namespace": fleetNS, "labels": labels},
		"spec": map[string]any{
			"clusterName": cluster,
			"replicas":    int64(4),
			"selector":    map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"clusterName":       cluster,
					"version":           "v1.36.3",
					"bootstrap":         map[string]any{"configRef": ref("bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate")},
					"infrastructureRef": ref("infrastructure.cluster.x-k8s.io", "DockerMachineTemplate"),
				},
			},
		},
	}}
	md, err := mgmtDyn.Resource(clusterapi.MachineDeploymentsResource).Namespace(fleetNS).Create(context.Background(), md, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// setMDStatus sets a MachineDeployment's status: replicas, ready ones,
// all up to date at version.
func setMDStatus(t *testing.T, md *unstructured.Unstructured, n, ready int64, version string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"replicas": n, "readyReplicas": ready, "availableReplicas": ready, "upToDateReplicas": n,
		"versions": []any{map[string]any{"version": version, "replicas": n}},
	}})
	if _, err := mgmtDyn.Resource(clusterapi.MachineDeploymentsResource).Namespace(fleetNS).Patch(context.Background(), md.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
}
