package attach_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/testenv"
)

// kubectlDebug adds an ephemeral container to a pod the way a user would,
// with kubectl debug, and returns kubectl's error output.
func kubectlDebug(t *testing.T, m *testenv.Process, ns, pod, image string, extra ...string) error {
	t.Helper()
	args := append([]string{"--kubeconfig", m.Kubeconfig, "-n", ns, "debug", pod, "--image", image}, extra...)
	out, err := exec.Command("kubectl", args...).CombinedOutput()
	if err != nil {
		return &kubectlError{string(out)}
	}
	return nil
}

// deleteNamespaces deletes namespaces of m and waits until they are gone,
// so later tests on the same member do not see this one's objects.
func deleteNamespaces(t *testing.T, m *testenv.Process, names ...string) {
	ctx := context.Background()
	for _, n := range names {
		m.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	waitFor(t, 60*time.Second, "namespaces deleted", func(ctx context.Context) (bool, error) {
		for _, n := range names {
			if err := m.Client.Get(ctx, client.ObjectKey{Name: n}, &corev1.Namespace{}); err == nil {
				return false, nil
			}
		}
		return true, nil
	})
}

type kubectlError struct{ out string }

func (e *kubectlError) Error() string { return e.out }

// eventuallyDenied retries op until it fails with a message containing want
// (policies reach the member asynchronously); op must change nothing when
// it succeeds.
func eventuallyDenied(t *testing.T, what, want string, op func(ctx context.Context) error) {
	t.Helper()
	waitFor(t, 20*time.Second, what+" denied mentioning "+want, func(ctx context.Context) (bool, error) {
		err := op(ctx)
		return err != nil && strings.Contains(err.Error(), want), nil
	})
}

func TestGuardrailsHold(t *testing.T) {
	ctx := context.Background()
	a := env.Clusters[0]
	ag := attachAndRun(t, "gr-a", a)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(ag.Dir, "logs", "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	})
	mustCreateNamespace(t, a, "gr-apps")
	mustCreateNamespace(t, a, "gr-tools")
	t.Cleanup(func() { deleteNamespaces(t, a, "gr-apps", "gr-tools") })

	// Workloads that predate the policies: a clean pod, and a pod breaking
	// the image rule, kept alive by a finalizer. (It breaks one rule only:
	// a cluster names the first admission policy that refuses a request.)
	if err := a.Client.Create(ctx, pod("gr-apps", "clean", "registry.example.com/app:1.0", nil)); err != nil {
		t.Fatal(err)
	}
	old := pod("gr-apps", "old", "docker.io/app:latest", func(p *corev1.Pod) {
		p.Finalizers = []string{"example.com/hold"}
	})
	if err := a.Client.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Client.Patch(context.Background(), old, client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`)))
	})

	createPolicy(t, "gr-images", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Organization: true},
		ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"registry.example.com"}, BlockLatest: true},
		Exemptions:    &fv1.Exemptions{Images: []string{"tools.example.com/debug/*", "docker.io/library/busybox:1.36"}, Namespaces: []string{"gr-tools"}}})
	createPolicy(t, "gr-priv", fv1.PolicySpec{Type: fv1.PolicySecurity, Scope: fv1.PolicyScope{Cluster: "gr-a"},
		Security: &fv1.SecuritySpec{DisallowPrivileged: true}})
	createPolicy(t, "gr-custom", fv1.PolicySpec{Type: fv1.PolicyCustom, Scope: fv1.PolicyScope{Cluster: "gr-a"},
		Custom: &fv1.CustomSpec{MatchKinds: []string{"Pod"}, Expression: "object.spec.containers.all(c, c.name != 'shell') && (!has(object.spec.ephemeralContainers) || object.spec.ephemeralContainers.all(c, c.name != 'shell'))",
			Message: "gr-custom: no container may be named shell"}})
	// Wait until the cluster enforces all three.
	eventuallyRejected(t, a, pod("gr-apps", "new-latest", "docker.io/app:latest", nil), "gr-images")
	eventuallyRejected(t, a, pod("gr-apps", "new-priv", "registry.example.com/app:1.0", func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	}), "gr-priv")
	eventuallyRejected(t, a, pod("gr-apps", "new-shell", "registry.example.com/app:1.0", func(p *corev1.Pod) {
		p.Spec.Containers[0].Name = "shell"
	}), "named shell")

	t.Run("ephemeral containers cannot bypass a rule", func(t *testing.T) {
		for _, c := range []struct {
			what, want string
			args       []string
		}{
			{"an image from an unlisted registry", "gr-images", []string{"docker.io/busybox:latest", "-c", "debug-1"}},
			{"a privileged container", "gr-priv", []string{"registry.example.com/debug:1.0", "-c", "debug-2", "--profile", "sysadmin"}},
			{"a container a custom rule forbids", "named shell", []string{"registry.example.com/debug:1.0", "-c", "shell"}},
		} {
			if err := kubectlDebug(t, a, "gr-apps", "clean", c.args[0], c.args[1:]...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("kubectl debug adding %s: got %v, want a denial naming %s", c.what, err, c.want)
			}
		}
		// One every rule allows is added.
		if err := kubectlDebug(t, a, "gr-apps", "clean", "registry.example.com/debug:1.0", "-c", "debug-3"); err != nil {
			t.Errorf("an allowed ephemeral container: %v", err)
		}
		// An exempt image passes the image rule.
		if err := kubectlDebug(t, a, "gr-apps", "clean", "tools.example.com/debug/shell:latest", "-c", "debug-4"); err != nil {
			t.Errorf("an exempt image: %v", err)
		}
	})

	t.Run("updates that leave the spec alone pass", func(t *testing.T) {
		patch := func(p string) error {
			return a.Client.Patch(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "gr-apps", Name: "old"}}, client.RawPatch(types.StrategicMergePatchType, []byte(p)))
		}
		if err := patch(`{"metadata":{"labels":{"tier":"web"},"annotations":{"note":"kept"}}}`); err != nil {
			t.Errorf("label and annotation on a pod that predates the rules: %v", err)
		}
		// Changing what a rule checks is judged: an image from another
		// unlisted registry is refused.
		if err := patch(`{"spec":{"containers":[{"name":"c","image":"quay.io/app:latest"}]}}`); err == nil || !strings.Contains(err.Error(), "gr-images") {
			t.Errorf("an image changed to another that breaks the rule: %v", err)
		}
		in := waitInsight(t, "gr-a", "gr-images", fv1.PolicyImageRegistry, fv1.InsightViolation, "Pod/old")
		if !strings.Contains(in.Message, "exempt: images tools.example.com/debug/*") {
			t.Errorf("the insight's message does not name the exemptions: %q", in.Message)
		}
		// Its controller removes the finalizer; the pod finishes terminating.
		if err := a.Client.Delete(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := patch(`{"metadata":{"finalizers":null}}`); err != nil {
			t.Fatalf("finalizer removed from a terminating pod that predates the rules: %v", err)
		}
		waitFor(t, 10*time.Second, "pod gone", func(ctx context.Context) (bool, error) {
			return client.IgnoreNotFound(a.Client.Get(ctx, client.ObjectKeyFromObject(old), &corev1.Pod{})) == nil &&
				a.Client.Get(ctx, client.ObjectKeyFromObject(old), &corev1.Pod{}) != nil, nil
		})
	})

	t.Run("exempt images and namespaces", func(t *testing.T) {
		if err := a.Client.Create(ctx, pod("gr-apps", "tool", "tools.example.com/debug/shell:latest", nil)); err != nil {
			t.Errorf("an image under an exempt prefix: %v", err)
		}
		if err := a.Client.Create(ctx, pod("gr-apps", "busybox", "docker.io/library/busybox:1.36", nil)); err != nil {
			t.Errorf("an exactly exempt image: %v", err)
		}
		err := a.Client.Create(ctx, pod("gr-apps", "busybox-next", "docker.io/library/busybox:1.37", nil))
		if err == nil || !strings.Contains(err.Error(), "(exempt: images tools.example.com/debug/*, docker.io/library/busybox:1.36; namespaces gr-tools)") {
			t.Errorf("an image beside an exact exemption: %v", err)
		}
		if err := a.Client.Create(ctx, pod("gr-tools", "anything", "docker.io/anything:latest", nil)); err != nil {
			t.Errorf("a pod in an exempt namespace: %v", err)
		}
		bin, err := testenv.Binary()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "policy", "effective", "--cluster", "gr-a", "--namespace", "gr-apps", "--hub-kubeconfig", env.Hub.Kubeconfig).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tools.example.com/debug/*") {
			t.Errorf("policy effective does not show the exempt images: %v\n%s", err, out)
		}
		out, err = exec.Command(bin, "policy", "effective", "--cluster", "gr-a", "--namespace", "gr-tools", "--hub-kubeconfig", env.Hub.Kubeconfig).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "gr-images") || !strings.Contains(string(out), "exempt") {
			t.Errorf("policy effective does not show the namespace's exemption: %v\n%s", err, out)
		}
	})
}

func TestCustomPolicyKindsFromDiscovery(t *testing.T) {
	ctx := context.Background()
	a := env.Clusters[0]
	// A custom resource whose plural no rule of English gives.
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "octopodes.zoo.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "zoo.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "octopodes", Singular: "octopus", Kind: "Octopus", ListKind: "OctopusList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"arms": {Type: "integer"}}}}}}}},
		},
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	if err != nil {
		t.Fatal(err)
	}
	ucrd := &unstructured.Unstructured{Object: raw}
	ucrd.SetAPIVersion("apiextensions.k8s.io/v1")
	ucrd.SetKind("CustomResourceDefinition")
	if err := a.Client.Create(ctx, ucrd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Client.Delete(context.Background(), ucrd) })
	octopus := func(name string, arms int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("zoo.example.com/v1")
		u.SetKind("Octopus")
		u.SetNamespace("default")
		u.SetName(name)
		unstructured.SetNestedField(u.Object, arms, "spec", "arms")
		return u
	}
	waitFor(t, 10*time.Second, "CRD served", func(ctx context.Context) (bool, error) {
		err := a.Client.Create(ctx, octopus("paul", 10))
		return err == nil, nil
	})
	mustCreateNamespace(t, a, "gr-deploy")
	t.Cleanup(func() { deleteNamespaces(t, a, "gr-deploy") })
	wide := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "gr-deploy", Name: "wide"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](12),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "wide"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "wide"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:1"}}}},
	}}
	if err := a.Client.Create(ctx, wide); err != nil {
		t.Fatal(err)
	}
	attachAndRun(t, "gr-kinds", a)

	createPolicy(t, "gr-arms", fv1.PolicySpec{Type: fv1.PolicyCustom, Scope: fv1.PolicyScope{Cluster: "gr-kinds"},
		Custom: &fv1.CustomSpec{MatchKinds: []string{"zoo.example.com/Octopus", "zoo.example.com/Squid"}, Expression: "object.spec.arms <= 8", Message: "at most 8 arms"}})
	createPolicy(t, "gr-replicas", fv1.PolicySpec{Type: fv1.PolicyCustom, Scope: fv1.PolicyScope{Cluster: "gr-kinds"},
		Custom: &fv1.CustomSpec{MatchKinds: []string{"apps/Deployment"}, Expression: "object.spec.replicas <= 10", Message: "at most 10 replicas"}})

	eventuallyDenied(t, "an octopus with 9 arms", "at most 8 arms", func(ctx context.Context) error {
		err := a.Client.Create(ctx, octopus("nine", 9))
		if err == nil {
			a.Client.Delete(ctx, octopus("nine", 9))
		}
		return err
	})
	if err := a.Client.Create(ctx, octopus("eight", 8)); err != nil {
		t.Errorf("an octopus with 8 arms: %v", err)
	}
	in := waitInsight(t, "gr-kinds", "gr-arms", fv1.PolicyCustom, fv1.InsightViolation, "Octopus/paul")
	if in.Namespace != "default" || !strings.Contains(in.Message, "at most 8 arms") {
		t.Errorf("insight = %+v", in)
	}
	if in := waitInsight(t, "gr-kinds", "gr-replicas", fv1.PolicyCustom, fv1.InsightViolation, "Deployment/wide"); in.Namespace != "gr-deploy" {
		t.Errorf("insight = %+v", in)
	}
	var c fv1.Cluster
	waitFor(t, 10*time.Second, "the kind the cluster does not serve reported", func(ctx context.Context) (bool, error) {
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "gr-kinds"}, &c); err != nil || c.Status.Policies == nil {
			return false, err
		}
		for _, in := range c.Status.Policies.Insights {
			if in.Kind == fv1.InsightKindNotServed && in.Policy == "gr-arms" && strings.Contains(in.Message, "zoo.example.com/Squid") {
				return true, nil
			}
		}
		return false, nil
	})
	// A scaled-down Deployment no longer appears.
	if err := a.Client.Patch(ctx, wide, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3}}`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the insight gone once fixed", func(ctx context.Context) (bool, error) {
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "gr-kinds"}, &c); err != nil {
			return false, err
		}
		b, _ := json.Marshal(c.Status.Policies)
		return !strings.Contains(string(b), "Deployment/wide"), nil
	})
}
