package attach_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
	"flotilla.dev/flotilla/internal/testenv"
)

// previewReport is the part of `policy preview -o json` the tests read.
type previewReport struct {
	Policy      string               `json:"policy"`
	DryRun      bool                 `json:"dryRun"`
	Complete    bool                 `json:"complete"`
	NotReported []string             `json:"notReported"`
	Clusters    int32                `json:"clusters"`
	Reported    int32                `json:"reported"`
	Rejected    int32                `json:"rejected"`
	Results     []fv1.ClusterPreview `json:"results"`
}

// flotilla runs the CLI against the shared hub and returns its stdout and
// stderr.
func flotilla(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--hub-kubeconfig", env.Hub.Kubeconfig)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// rejectedObjects maps each cluster of a report to the NAMESPACE/KIND/NAME
// of the objects listed.
func rejectedObjects(rep previewReport) map[string][]string {
	out := map[string][]string{}
	for _, r := range rep.Results {
		for _, o := range r.Objects {
			out[r.Cluster] = append(out[r.Cluster], o.Namespace+"/"+o.Object)
		}
	}
	return out
}

// The what-if report of an image-registry policy over 3 real clusters, two
// holding violating workloads among clean ones: `policy create --dry-run`
// names exactly the violating pods, enforces nothing and leaves no policy
// behind; `policy preview` reports an audit-mode policy the same way, from
// its status.
func TestPolicyWhatIfOverThreeClusters(t *testing.T) {
	ctx := context.Background()
	// The shared env has two members; a third for this test alone.
	third := testenv.NewCluster(filepath.Join(t.TempDir(), "member"), "whatif-3", 1)
	if err := third.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(third.Stop)
	members := map[string]*testenv.Process{"wi-a": env.Clusters[0], "wi-b": env.Clusters[1], "wi-c": third}
	for name, m := range members {
		attachAndRun(t, name, m)
	}
	// A workspace of these clusters' namespaces only: clusters of earlier
	// tests, whose agents are gone, never report and must not be in scope.
	if _, err := fleet.CreateWorkspace(ctx, env.Hub.Client, "whatif", ""); err != nil {
		t.Fatal(err)
	}
	for name, m := range members {
		if _, err := fleet.CreateNamespace(ctx, env.Hub.Client, name, "wi-web", "whatif"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "namespace wi-web in "+name, func(ctx context.Context) (bool, error) {
			return m.Client.Get(ctx, client.ObjectKey{Name: "wi-web"}, &corev1.Namespace{}) == nil, nil
		})
	}
	mustCreate := func(m *testenv.Process, p *corev1.Pod) {
		t.Helper()
		if err := m.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	const clean = "registry.example.com/nginx:1.27"
	mustCreate(members["wi-a"], pod("wi-web", "bad-hub", "docker.io/nginx:latest", nil))
	mustCreate(members["wi-a"], pod("wi-web", "bad-tag", "registry.example.com/nginx:latest", nil))
	mustCreate(members["wi-a"], pod("wi-web", "good", clean, nil))
	mustCreate(members["wi-a"], pod("default", "outside", "docker.io/nginx:latest", nil)) // not in the workspace
	mustCreate(members["wi-b"], pod("wi-web", "bad-untagged", "quay.io/nginx", nil))
	mustCreate(members["wi-b"], pod("wi-web", "good", clean, nil))
	mustCreate(members["wi-c"], pod("wi-web", "good", clean, nil))
	want := map[string][]string{"wi-a": {"wi-web/Pod/bad-hub", "wi-web/Pod/bad-tag"}, "wi-b": {"wi-web/Pod/bad-untagged"}}
	policyArgs := []string{"--type", "image-registry", "--workspace", "whatif", "--allow-registry", "registry.example.com", "--block-latest"}

	t.Run("create --dry-run", func(t *testing.T) {
		start := time.Now()
		out, errOut, err := flotilla(t, append([]string{"policy", "create", "wi-trusted", "--dry-run", "--wait", "60s"}, policyArgs...)...)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("flotilla policy create --dry-run: %v\n%s%s", err, out, errOut)
		}
		t.Logf("what-if report for 3 clusters in %s (the whole command: create, wait, print, delete)\n%s", elapsed, out)
		for _, s := range []string{"bad-hub", "bad-tag", "bad-untagged", "3 objects in 2 of 3 clusters would be rejected", "nothing was enforced"} {
			if !strings.Contains(out, s) {
				t.Errorf("report lacks %q", s)
			}
		}
		if report, _, _ := strings.Cut(out, "nothing was enforced"); strings.Contains(report, "-whatif-") {
			t.Errorf("report names the temporary policy, not wi-trusted:\n%s", out)
		}

		out, errOut, err = flotilla(t, append([]string{"policy", "create", "wi-trusted", "--dry-run", "-o", "json"}, policyArgs...)...)
		if err != nil {
			t.Fatalf("flotilla policy create --dry-run -o json: %v\n%s%s", err, out, errOut)
		}
		var rep previewReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		if rep.Policy != "wi-trusted" || !rep.DryRun || !rep.Complete || rep.Clusters != 3 || rep.Reported != 3 || rep.Rejected != 3 {
			t.Errorf("report = %+v", rep)
		}
		if got := rejectedObjects(rep); !reflect.DeepEqual(got, want) {
			t.Errorf("rejected objects = %v, want %v", got, want)
		}
		for _, r := range rep.Results {
			for _, o := range r.Objects {
				if strings.Contains(o.Message, "-whatif-") || o.Message == "" {
					t.Errorf("message %q should name wi-trusted, not the temporary policy", o.Message)
				}
			}
		}

		// Nothing was enforced, and nothing is left behind.
		if err := members["wi-a"].Client.Create(ctx, pod("wi-web", "after", "docker.io/nginx:latest", nil)); err != nil {
			t.Errorf("a violating pod after the dry run: %v", err)
		}
		var pols fv1.PolicyList
		if err := env.Hub.Client.List(ctx, &pols); err != nil {
			t.Fatal(err)
		}
		for _, p := range pols.Items {
			if strings.HasPrefix(p.Name, "wi-trusted") {
				t.Errorf("policy %s left on the hub", p.Name)
			}
		}
		for name, m := range members {
			waitFor(t, 15*time.Second, "temporary admission policies gone from "+name, func(ctx context.Context) (bool, error) {
				var vaps admissionregistrationv1.ValidatingAdmissionPolicyList
				if err := m.Client.List(ctx, &vaps); err != nil {
					return false, err
				}
				for _, v := range vaps.Items {
					if strings.HasPrefix(v.Name, "flotilla-wi-trusted") {
						return false, nil
					}
				}
				return true, nil
			})
		}
	})

	t.Run("preview of an audit-mode policy", func(t *testing.T) {
		createPolicy(t, "wi-audit", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Mode: fv1.ModeAudit, Scope: fv1.PolicyScope{Workspace: "whatif"},
			ImageRegistry: &fv1.ImageRegistrySpec{AllowedRegistries: []string{"registry.example.com"}, BlockLatest: true}})
		out, errOut, err := flotilla(t, "policy", "preview", "wi-audit", "-o", "json", "--wait", "60s")
		if err != nil {
			t.Fatalf("flotilla policy preview: %v\n%s%s", err, out, errOut)
		}
		var rep previewReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		want := map[string][]string{"wi-a": {"wi-web/Pod/after", "wi-web/Pod/bad-hub", "wi-web/Pod/bad-tag"}, "wi-b": {"wi-web/Pod/bad-untagged"}}
		if got := rejectedObjects(rep); !rep.Complete || rep.DryRun || !reflect.DeepEqual(got, want) {
			t.Errorf("report = %+v, objects %v, want %v", rep, got, want)
		}
		// The same report is on the policy's status, for kubectl and the API.
		var p fv1.Policy
		if err := env.Hub.Client.Get(ctx, client.ObjectKey{Name: "wi-audit"}, &p); err != nil {
			t.Fatal(err)
		}
		pv := p.Status.Preview
		if pv == nil || pv.Generation != p.Generation || pv.Clusters != 3 || pv.Reported != 3 || pv.Rejected != 4 || len(pv.Results) != 2 ||
			pv.Results[0].Cluster != "wi-a" || pv.Results[0].Rejected != 3 || pv.Results[1].Cluster != "wi-b" || pv.Results[1].Rejected != 1 {
			t.Errorf("status.preview = %+v", pv)
		}
		out, _, err = flotilla(t, "policy", "get", "wi-audit")
		if err != nil || !strings.Contains(out, "4 objects in 2 of 3 clusters would be rejected") {
			t.Errorf("flotilla policy get: %v\n%s", err, out)
		}
	})

	t.Run("preview of an enforcing policy explains", func(t *testing.T) {
		createPolicy(t, "wi-enforce", fv1.PolicySpec{Type: fv1.PolicyImageRegistry, Scope: fv1.PolicyScope{Workspace: "wi-none"},
			ImageRegistry: &fv1.ImageRegistrySpec{BlockLatest: true}})
		_, errOut, err := flotilla(t, "policy", "preview", "wi-enforce")
		if err == nil || !strings.Contains(errOut, "audit-mode") || !strings.Contains(errOut, "--dry-run") {
			t.Errorf("preview of an enforcing policy: %v\n%s", err, errOut)
		}
	})
}
