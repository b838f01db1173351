package e2e

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"flotilla.dev/flotilla/internal/testenv"
)

// With --cluster-kubeconfig the CLI installs the agent's objects into the
// member cluster itself. No pod runs them here (local clusters have no
// kubelet or container runtime), so this checks what the install leaves in
// the cluster's apiserver: a Deployment wired to a bootstrap kubeconfig for
// this hub and cluster.
func TestAttachInstallsAgentIntoCluster(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1})
	hub, member := env.Hub.Kubeconfig, env.Clusters[0]

	out := hubOK(t, hub, "cluster", "attach", "inpod", "--cluster-kubeconfig", member.Kubeconfig, "--agent-image", "registry.example/flotilla:test")
	if !strings.Contains(out, "installed") {
		t.Errorf("attach output: %s", out)
	}
	ctx := context.Background()
	get := func(o client.Object, ns, name string) {
		t.Helper()
		if err := member.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
			t.Fatalf("%T %s/%s in the member cluster: %v", o, ns, name, err)
		}
	}
	get(&corev1.Namespace{}, "", "flotilla-system")
	get(&corev1.ServiceAccount{}, "flotilla-system", "flotilla-agent")
	var crb rbacv1.ClusterRoleBinding
	get(&crb, "", "flotilla-agent")
	if len(crb.Subjects) != 1 || crb.Subjects[0].Name != "flotilla-agent" || crb.Subjects[0].Namespace != "flotilla-system" {
		t.Errorf("binding subjects %+v", crb.Subjects)
	}

	var secret corev1.Secret
	get(&secret, "flotilla-system", "flotilla-bootstrap")
	boot, err := clientcmd.Load(secret.Data["kubeconfig"])
	if err != nil {
		t.Fatalf("bootstrap kubeconfig: %v", err)
	}
	if boot.CurrentContext != "inpod" || boot.Clusters[boot.Contexts["inpod"].Cluster].Server != env.Hub.Config.Host {
		t.Errorf("bootstrap kubeconfig names context %q, server %q; want inpod at %s", boot.CurrentContext,
			boot.Clusters[boot.Contexts[boot.CurrentContext].Cluster].Server, env.Hub.Config.Host)
	}

	var d appsv1.Deployment
	get(&d, "flotilla-system", "flotilla-agent")
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != "flotilla-agent" || len(spec.Containers) != 1 {
		t.Fatalf("pod spec %+v", spec)
	}
	c := spec.Containers[0]
	if c.Image != "registry.example/flotilla:test" || len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Errorf("container image %q args %v", c.Image, c.Args)
	}
	mounted := false
	for _, v := range spec.Volumes {
		mounted = mounted || v.Secret != nil && v.Secret.SecretName == "flotilla-bootstrap"
	}
	if !mounted {
		t.Errorf("the bootstrap Secret is not mounted: %+v", spec.Volumes)
	}

	// The hub has the cluster, waiting for its agent.
	if got := hubOK(t, hub, "cluster", "get", "inpod", "-o", "yaml"); !strings.Contains(got, "name: inpod") {
		t.Errorf("cluster get:\n%s", got)
	}
	hubOK(t, hub, "cluster", "detach", "inpod", "--force")
}
