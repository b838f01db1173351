// Package localcluster runs a real Kubernetes control plane on this machine:
// embedded etcd and kube-apiserver in this process, kube-controller-manager and
// kube-scheduler as child processes of the same binary, and simulated nodes on
// which scheduled pods become Running. It is what `flotilla up`, the local
// provider and the tests attach as member clusters.
package localcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/etcd"
	"flotilla.dev/flotilla/internal/gctune"
	"flotilla.dev/flotilla/internal/kubeapi"
	"flotilla.dev/flotilla/internal/nodesim"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/version"
)

// Controllers are the kube-controller-manager controllers a local cluster runs.
// Node lifecycle is left out: simulated nodes need no eviction, and without it
// the TaintNodesByCondition admission plugin is turned off too.
var Controllers = []string{
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"resourcequota-controller",
	"pod-garbage-collector-controller",
	"disruption-controller",
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-approving-controller",
	"certificatesigningrequest-cleaner-controller",
	"clusterrole-aggregation-controller",
	"ttl-after-finished-controller",
}

// Config describes a local cluster.
type Config struct {
	// Name of the cluster, used in its kubeconfig.
	Name string
	// DataDir keeps the cluster's state; a restart with the same dir keeps it.
	DataDir string
	// Nodes is the number of simulated nodes.
	Nodes int
	// Port of the apiserver; 0 reuses the last one or picks a free port.
	Port int
	// NodeCPU and NodeMemory are each simulated node's capacity.
	NodeCPU, NodeMemory resource.Quantity
	// NoBootstrapTokenAuth starts the apiserver without bootstrap-token
	// authentication, as some managed clusters run: a host on which a hub
	// (hub --kubeconfig) cannot register agents, for testing that it says so.
	NoBootstrapTokenAuth bool
	// OnReady, if set, is called once the component serves.
	OnReady func()
}

// NewConfig returns a Config with defaults.
func NewConfig() Config {
	return Config{Name: "local", Nodes: 2, NodeCPU: resource.MustParse("4"), NodeMemory: resource.MustParse("16Gi")}
}

// Run runs the cluster until ctx ends. It writes DataDir/kubeconfig and
// marks the data dir ready once nodes are Ready and controllers work.
func Run(ctx context.Context, c Config) error {
	if c.Nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1, got %d", c.Nodes)
	}
	dir, err := datadir.Open(c.DataDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	logs, err := dir.Sub("logs")
	if err != nil {
		return err
	}
	pkiDir, err := dir.Sub("pki")
	if err != nil {
		return err
	}
	apiPort, err := dir.Port("apiserver", c.Port)
	if err != nil {
		return err
	}
	clientPort, err := dir.Port("etcd-client", 0)
	if err != nil {
		return err
	}
	peerPort, err := dir.Port("etcd-peer", 0)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	member, err := etcd.Start(ctx, etcd.Config{
		Name:      c.Name,
		DataDir:   dir.Join("etcd"),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", clientPort),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		LogFile:   dir.Join("logs", "etcd.log"),
	})
	if err != nil {
		return err
	}
	defer member.Close()

	gctune.Set(gctune.APIServer)
	api, err := kubeapi.Start(ctx, kubeapi.Config{
		PKIDir:           pkiDir,
		Port:             apiPort,
		EtcdServers:      []string{fmt.Sprintf("http://127.0.0.1:%d", clientPort)},
		Authorization:    "RBAC",
		DisableAdmission: []string{"TaintNodesByCondition"},
		// Lets a local cluster host a hub (flotilla hub --kubeconfig) that registers agents.
		ExtraArgs:   []string{"--enable-bootstrap-token-auth=" + strconv.FormatBool(!c.NoBootstrapTokenAuth)},
		ServiceCIDR: "10.96.0.0/16",
	})
	if err != nil {
		return err
	}
	defer api.Stop(4 * time.Second)
	if err := api.WriteKubeconfig(dir.Join("kubeconfig"), c.Name, "admin"); err != nil {
		return err
	}
	kcm, err := api.StartControllerManager(c.Name, filepath.Join(logs, "kube-controller-manager.log"), Controllers)
	if err != nil {
		return err
	}
	sched, err := api.StartScheduler(c.Name, filepath.Join(logs, "kube-scheduler.log"))
	if err != nil {
		kcm.Stop(time.Second)
		return err
	}
	defer procs.StopAll(3*time.Second, kcm, sched)

	cs, err := kubernetes.NewForConfig(api.Admin)
	if err != nil {
		return err
	}
	sim := nodesim.New(cs)
	if err := sim.Set(ctx, Nodes(c.Nodes, c.NodeCPU, c.NodeMemory, version.Kubernetes())); err != nil {
		return err
	}
	sim.Run(ctx)
	if err := waitControllers(ctx, cs, kcm); err != nil {
		return err
	}
	if err := dir.MarkReady(); err != nil {
		return err
	}
	if c.OnReady != nil {
		c.OnReady()
	}
	klog.InfoS("local cluster ready", "name", c.Name, "server", api.URL, "nodes", c.Nodes)

	select {
	case <-ctx.Done():
		return nil
	case err := <-api.Err():
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case err := <-member.Err():
		return fmt.Errorf("etcd stopped: %v", err)
	case <-kcm.Done():
		return fmt.Errorf("kube-controller-manager exited: %v; see %s", kcm.Err(), dir.Join("logs", "kube-controller-manager.log"))
	case <-sched.Done():
		return fmt.Errorf("kube-scheduler exited: %v; see %s", sched.Err(), dir.Join("logs", "kube-scheduler.log"))
	}
}

// Nodes are a local cluster's count simulated nodes, node-1 to node-COUNT.
func Nodes(count int, cpu, memory resource.Quantity, version string) []nodesim.Node {
	var out []nodesim.Node
	for i := 1; i <= count; i++ {
		out = append(out, nodesim.Node{Name: fmt.Sprintf("node-%d", i), Index: i, Version: version, CPU: cpu, Memory: memory})
	}
	return out
}

// waitControllers waits until the controller manager has created the default
// service account: proof that it runs and reaches the apiserver.
func waitControllers(ctx context.Context, cs kubernetes.Interface, kcm *procs.Proc) error {
	deadline := time.After(time.Minute)
	for {
		_, err := cs.CoreV1().ServiceAccounts(corev1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kcm.Done():
			return fmt.Errorf("kube-controller-manager exited: %v", kcm.Err())
		case <-deadline:
			return fmt.Errorf("controllers not working after 1m: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
