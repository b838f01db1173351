package access

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// whoami asks cluster, through the hub, who cfg's requests act as there.
func whoami(ctx context.Context, cfg *rest.Config) (string, []string, error) {
	r, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, err
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups, nil
}

// TestImpersonationHeaders: a client's impersonation headers count only
// when the hub's RBAC lets its user impersonate, as kube-apiserver does;
// then the member sees the impersonated user.
func TestImpersonationHeaders(t *testing.T) {
	accessPolicy(t, "erin-view", fv1.PolicyScope{Cluster: "east"}, "view", userSubject("erin"))
	accessPolicy(t, "frank-view", fv1.PolicyScope{Cluster: "east"}, "view", userSubject("frank"))
	frank := restConfig(t, user(t, "frank"), "east")
	ctx := context.Background()
	waitFor(t, 30*time.Second, "frank reaches east", func(ctx context.Context) (bool, error) {
		_, _, err := whoami(ctx, frank)
		return err == nil, nil
	})

	asErin := rest.CopyConfig(frank)
	asErin.Impersonate = rest.ImpersonationConfig{UserName: "erin"}
	if _, _, err := whoami(ctx, asErin); classify(err) != hubForbids && !strings.Contains(errText(err), "cannot impersonate") {
		t.Fatalf("frank impersonating erin without the right: %v", err)
	}

	// Given the right on the hub to impersonate erin, frank acts as erin.
	role := &rbacv1.ClusterRole{ObjectMeta: objectMeta("impersonate-erin"), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"erin"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: objectMeta("impersonate-erin"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}, Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "frank"}}}
	if _, err := env.Hub.Clientset.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer env.Hub.Clientset.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})
	if _, err := env.Hub.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer env.Hub.Clientset.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
	waitFor(t, 10*time.Second, "frank acts as erin in east", func(ctx context.Context) (bool, error) {
		name, _, err := whoami(ctx, asErin)
		return err == nil && name == "erin", nil
	})
}

// TestOIDCUser: a user the hub authenticates by an OIDC ID token (its
// structured authentication config trusts an issuer the test runs) reaches
// the clusters an access policy for its group allows, as itself.
func TestOIDCUser(t *testing.T) {
	accessPolicy(t, "sre-view", fv1.PolicyScope{Organization: true}, "view", groupSubject("oidc:sre"))
	tok, err := issuer.token("gina@example.com", "sre")
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Hub.Config)
	cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile, cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = "", "", nil, nil
	cfg.BearerToken = tok
	for _, cluster := range []string{"east", "west"} {
		c := rest.CopyConfig(cfg)
		c.Host += fv1.ProxyPath(cluster)
		waitFor(t, 30*time.Second, "gina reaches "+cluster, func(ctx context.Context) (bool, error) {
			name, groups, err := whoami(ctx, c)
			if err != nil {
				t.Logf("whoami in %s: %v", cluster, err)
				return false, nil
			}
			if name != "oidc:gina@example.com" || !contains(groups, "oidc:sre") {
				t.Fatalf("%s sees %s %v", cluster, name, groups)
			}
			return true, nil
		})
	}
	// Another group's token reaches nothing.
	other, _ := issuer.token("hank@example.com", "dev")
	c := rest.CopyConfig(cfg)
	c.BearerToken, c.Host = other, c.Host+fv1.ProxyPath("east")
	if _, _, err := whoami(context.Background(), c); classify(err) != hubForbids {
		t.Fatalf("hank, not in oidc:sre, reaching east: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
