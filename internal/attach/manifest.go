package attach

import (
	"bytes"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

const (
	agentNamespace = "flotilla-system"
	agentName      = "flotilla-agent"
	// identitySecret keeps the agent's hub identity (--identity-secret).
	identitySecret = "flotilla-agent-identity"
)

var managedBy = map[string]string{"app.kubernetes.io/managed-by": "flotilla", "app.kubernetes.io/name": agentName}

// AgentOptions describe the agent a manifest runs.
type AgentOptions struct {
	// Image of the agent.
	Image string
	// ReadOnly binds the agent to a read-only ClusterRole instead of
	// cluster-admin, for a cluster attached with Options.ReadOnly.
	ReadOnly bool
}

// AgentObjects are what runs the agent inside a member cluster: its
// namespace, service account, RBAC, the bootstrap kubeconfig and a Deployment.
// The agent applies policies in the cluster (RBAC bindings among them), so it
// is bound to cluster-admin there; on the hub it has least privilege.
func AgentObjects(bootstrap []byte, image string) []client.Object {
	return AgentObjectsFor(bootstrap, AgentOptions{Image: image})
}

// AgentObjectsFor are AgentObjects as o describes them. A read-only agent
// (o.ReadOnly) is bound instead to the ClusterRole fv1.ReadOnlyAgentRole,
// which grants get, list and watch of what the fleet view reads (nodes,
// namespaces, pods) and the apiserver's health, version and discovery, and
// nothing else cluster-wide; in its own namespace it may read, update and
// delete its identity Secret, which the manifest creates empty, and
// nothing more. It runs with --read-only.
func AgentObjectsFor(bootstrap []byte, o AgentOptions) []client.Object {
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: managedBy}
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: agentName, Namespace: agentNamespace}}
	args := []string{"agent", "--bootstrap-kubeconfig=/etc/flotilla/bootstrap/kubeconfig", "--data-dir=/var/lib/flotilla",
		"--identity-secret=" + agentNamespace + "/" + identitySecret}
	var rbac []client.Object
	if o.ReadOnly {
		args = append(args, "--read-only")
		rbac = []client.Object{
			&rbacv1.ClusterRole{
				TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(fv1.ReadOnlyAgentRole, ""),
				Rules: readOnlyRules(),
			},
			&rbacv1.ClusterRoleBinding{
				TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(fv1.ReadOnlyAgentRole, ""),
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fv1.ReadOnlyAgentRole},
				Subjects: subjects,
			},
			// Created here, so the agent needs no right to create Secrets.
			&corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: meta(identitySecret, agentNamespace), Type: corev1.SecretTypeOpaque},
			&rbacv1.Role{
				TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(identitySecret, agentNamespace),
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{identitySecret},
					Verbs: []string{"get", "update", "delete"},
				}},
			},
			&rbacv1.RoleBinding{
				TypeMeta: tm("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta(identitySecret, agentNamespace),
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: identitySecret},
				Subjects: subjects,
			},
		}
	} else {
		rbac = []client.Object{&rbacv1.ClusterRoleBinding{
			TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(agentName, ""),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: subjects,
		}}
	}
	objs := []client.Object{
		&corev1.Namespace{TypeMeta: tm("v1", "Namespace"), ObjectMeta: meta(agentNamespace, "")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(agentName, agentNamespace)},
	}
	objs = append(objs, rbac...)
	return append(objs,
		&corev1.Secret{
			TypeMeta: tm("v1", "Secret"), ObjectMeta: meta("flotilla-bootstrap", agentNamespace),
			StringData: map[string]string{"kubeconfig": string(bootstrap)},
		},
		&appsv1.Deployment{
			TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: meta(agentName, agentNamespace),
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": agentName}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: managedBy},
					Spec: corev1.PodSpec{
						ServiceAccountName: agentName,
						Containers: []corev1.Container{{
							Name:  "agent",
							Image: o.Image,
							// The pod's disk goes with it; the identity must not.
							Args: args,
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: mustQ("10m"), corev1.ResourceMemory: mustQ("32Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceMemory: mustQ("128Mi")},
							},
							SecurityContext: &corev1.SecurityContext{
								RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), AllowPrivilegeEscalation: ptr.To(false),
								ReadOnlyRootFilesystem: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							},
							VolumeMounts: []corev1.VolumeMount{
								{Name: "bootstrap", MountPath: "/etc/flotilla/bootstrap", ReadOnly: true},
								{Name: "data", MountPath: "/var/lib/flotilla"},
							},
						}},
						Volumes: []corev1.Volume{
							{Name: "bootstrap", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "flotilla-bootstrap"}}},
							{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						},
					},
				},
			},
		},
	)
}

// readOnlyRules are what the agent of a cluster attached read-only may do
// cluster-wide: read what its reports count (nodes, namespaces, pods) and
// ask the apiserver its health, version and API. No write, no Secret.
func readOnlyRules() []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces", "pods"}, Verbs: read},
		{NonResourceURLs: []string{"/readyz", "/readyz/*", "/livez", "/livez/*", "/healthz", "/version", "/api", "/api/*", "/apis", "/apis/*"}, Verbs: []string{"get"}},
	}
}

// Manifest renders objs as a multi-document YAML for kubectl apply -f -.
func Manifest(objs []client.Object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Install applies objs to the member cluster with server-side apply.
func Install(ctx context.Context, cfg *rest.Config, objs []client.Object, scheme *runtime.Scheme) error {
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	for _, o := range objs {
		o.SetManagedFields(nil)
		//nolint:staticcheck // client.Apply with typed objects is the simplest correct apply here.
		if err := cl.Patch(ctx, o, client.Apply, client.FieldOwner("flotilla"), client.ForceOwnership); err != nil {
			return fmt.Errorf("installing %s %s in the cluster: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return nil
}

func tm(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }
