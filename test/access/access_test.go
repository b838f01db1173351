package access

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// probe is one request a user makes to a cluster through the hub, and
// where it must end: allowed, refused by the hub (no reach), or refused by
// the member's RBAC (reach, but not this verb).
type probe struct {
	user, cluster, verb string
	want                outcome
}

type outcome string

const (
	allowed      outcome = "allowed"
	hubForbids   outcome = "forbidden at the hub"
	memberForbid outcome = "forbidden in the member"
)

// TestWhoMayReachWhat: an access policy on a group lets its subjects reach
// the group's clusters and act there as its role allows, and no more; one
// on a cluster the same for that cluster; deleting a policy revokes reach.
func TestWhoMayReachWhat(t *testing.T) {
	accessPolicy(t, "team-a-edit", fv1.PolicyScope{ClusterGroup: "team-a"}, "edit", userSubject("alice"))
	carolView := accessPolicy(t, "west-view", fv1.PolicyScope{Cluster: "west"}, "view", userSubject("carol"))
	kc := map[string]string{"alice": user(t, "alice", "team-a"), "bob": user(t, "bob"), "carol": user(t, "carol")}

	probes := []probe{
		{"alice", "east", "list", allowed},
		{"alice", "east", "create", allowed},
		{"alice", "west", "list", hubForbids},
		{"alice", "west", "create", hubForbids},
		{"bob", "east", "list", hubForbids},
		{"bob", "west", "create", hubForbids},
		{"carol", "west", "list", allowed},
		{"carol", "west", "create", memberForbid},
		{"carol", "east", "list", hubForbids},
	}
	// Agents apply the members' RBAC within a heartbeat or two.
	waitFor(t, 30*time.Second, "every probe as expected", func(ctx context.Context) (bool, error) {
		for _, p := range probes {
			if got := try(ctx, t, kc[p.user], p); got != p.want {
				t.Logf("%s %s in %s: %s, want %s", p.user, p.verb, p.cluster, got, p.want)
				return false, nil
			}
		}
		return true, nil
	})

	// Deleting a policy takes the reach away within seconds.
	if err := env.Hub.Client.Delete(context.Background(), carolView); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "carol's reach revoked", func(ctx context.Context) (bool, error) {
		return try(ctx, t, kc["carol"], probe{"carol", "west", "list", ""}) == hubForbids, nil
	})
	t.Logf("reach revoked %s after the policy's deletion", time.Since(start).Round(time.Millisecond))
}

// try makes p's request with kubeconfig and says how it ended.
func try(ctx context.Context, t *testing.T, kubeconfig string, p probe) outcome {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(restConfig(t, kubeconfig, p.cluster))
	var err error
	switch p.verb {
	case "list":
		_, err = cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	case "create":
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}
		var made *corev1.ConfigMap
		if made, err = cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err == nil {
			members[p.cluster].Clientset.CoreV1().ConfigMaps("default").Delete(ctx, made.Name, metav1.DeleteOptions{})
		}
	}
	return classify(err)
}

// classify tells a refusal by the hub (on clusters/proxy) from one by the
// member (on the resource itself).
func classify(err error) outcome {
	switch {
	case err == nil:
		return allowed
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "clusters/proxy"):
		return hubForbids
	case apierrors.IsForbidden(err):
		return memberForbid
	}
	return outcome("error: " + err.Error())
}

// TestKubectlThroughTheHub: kubectl with the kubeconfig `flotilla
// kubeconfig` writes gets, applies, watches and deletes in a cluster
// through the hub, as the hub's user.
func TestKubectlThroughTheHub(t *testing.T) {
	accessPolicy(t, "dana-admin", fv1.PolicyScope{Cluster: "east"}, "admin", userSubject("dana"))
	kc := user(t, "dana", "team-a")
	waitFor(t, 30*time.Second, "dana may list in east", func(ctx context.Context) (bool, error) {
		_, err := kubectl(kc, "--context", "east", "get", "configmaps", "-n", "default")
		return err == nil, nil
	})
	who, err := kubectl(kc, "--context", "east", "auth", "whoami")
	if err != nil || !strings.Contains(who, "dana") || !strings.Contains(who, "team-a") {
		t.Fatalf("whoami in east through the hub: %v\n%s", err, who)
	}

	// A watch through the hub sees changes as they happen.
	events := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := kubernetes.NewForConfigOrDie(restConfig(t, kc, "east")).CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=watched"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for e := range w.ResultChan() {
			events <- string(e.Type)
		}
	}()
	manifest := t.TempDir() + "/cm.yaml"
	write(t, manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: default\ndata:\n  color: blue\n")
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", manifest},
		{"get", "configmap", "watched", "-n", "default", "-o", "jsonpath={.data.color}"},
		{"delete", "-f", manifest},
	} {
		out, err := kubectl(kc, append([]string{"--context", "east"}, args...)...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "get" && out != "blue" {
			t.Fatalf("got %q", out)
		}
	}
	for _, want := range []string{"ADDED", "DELETED"} {
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("watch event %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event through the hub", want)
		}
	}
	cancel()

	// Each request is on the hub's audit log, as dana, with its cluster,
	// verb, resource, namespace, name, code and latency.
	// (A watch's name is its field selector's.)
	want := map[string]string{"patch": "watched", "get": "watched", "delete": "watched", "watch": "watched"}
	waitFor(t, 10*time.Second, "dana's requests in the audit log", func(context.Context) (bool, error) {
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(flotilla(t, "audit", "--data-dir", env.Hub.Dir, "--user", "dana", "--cluster", "east", "-o", "json")), "\n") {
			var e struct {
				User, Cluster, Verb, Resource, Namespace, Name, Latency string
				Groups                                                  []string
				Code                                                    int
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			if e.User != "dana" || e.Cluster != "east" || e.Code == 0 || e.Latency == "" || !contains(e.Groups, "team-a") {
				t.Fatalf("audit entry %+v", e)
			}
			if name, ok := want[e.Verb]; ok && e.Resource == "configmaps" && e.Namespace == "default" && e.Name == name {
				seen[e.Verb] = true
			}
		}
		return len(seen) == len(want), nil
	})
}

// TestKubeconfigForEveryReachableCluster: a user who may not list the
// hub's clusters gets, with --all, a context for each cluster the user may
// reach, and none for the others.
func TestKubeconfigForEveryReachableCluster(t *testing.T) {
	accessPolicy(t, "ivan-view", fv1.PolicyScope{ClusterGroup: "team-a"}, "view", userSubject("ivan"))
	hubKC := userHub(t, "ivan")
	waitFor(t, 10*time.Second, "ivan's kubeconfig names east alone", func(context.Context) (bool, error) {
		out, err := flotillaErr("kubeconfig", "--all", "--hub-kubeconfig", hubKC)
		if err != nil {
			return false, nil // no reach yet
		}
		cfg, err := clientcmd.Load([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		_, east := cfg.Contexts["east"]
		return east && len(cfg.Contexts) == 1, nil
	})
}

// TestAgentIdentityCannotUseTheAccessPoint: an agent's hub identity may
// not reach its own cluster, or any other, through the access point.
func TestAgentIdentityCannotUseTheAccessPoint(t *testing.T) {
	cfg := restConfig(t, agents["east"].Dir+"/hub.kubeconfig", "")
	for _, cluster := range []string{"east", "west"} {
		c := rest.CopyConfig(cfg)
		c.Host += fv1.ProxyPath(cluster)
		_, err := kubernetes.NewForConfigOrDie(c).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
		if got := classify(err); got != hubForbids {
			t.Errorf("east's agent listing namespaces of %s through the hub: %s (%v)", cluster, got, err)
		}
	}
}

func errText(err error) string { return fmt.Sprint(err) }
