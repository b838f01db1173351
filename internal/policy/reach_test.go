package policy

import (
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// reachFleet: a and b in group prod (b without namespaces yet), c and d in
// dev, e in prod but being detached.
func reachFleet() []ClusterView {
	cl := func(name, group string) fv1.Cluster {
		return fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fv1.ClusterSpec{Group: group}}
	}
	ns := func(cluster, name, ws string, labels map[string]string) fv1.ClusterNamespace {
		return fv1.ClusterNamespace{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fv1.HubNamespace(cluster)},
			Spec:       fv1.ClusterNamespaceSpec{Workspace: ws},
			Status:     fv1.ClusterNamespaceStatus{Labels: labels},
		}
	}
	detaching := cl("e", "prod")
	detaching.DeletionTimestamp = &metav1.Time{}
	return Views(
		[]fv1.Cluster{cl("a", "prod"), cl("b", "prod"), cl("c", "dev"), cl("d", "dev"), detaching},
		[]fv1.ClusterNamespace{
			ns("a", "web", "shop", map[string]string{"tier": "front"}),
			ns("a", "kube-system", "shop", nil),
			ns("c", "api", "shop", map[string]string{"tier": "back"}),
			ns("c", "kube-system", "ops", nil),
			ns("d", "kube-system", "ops", nil),
			ns("e", "web", "shop", map[string]string{"tier": "front"}),
		})
}

func access(subjects ...fv1.Subject) func(*fv1.PolicySpec) {
	return func(s *fv1.PolicySpec) { s.Access = &fv1.AccessSpec{Role: "view", Subjects: subjects} }
}

func TestReachOf(t *testing.T) {
	alice := fv1.Subject{Kind: "User", Name: "alice"}
	selector := func(k, v string) func(*fv1.PolicySpec) {
		return func(s *fv1.PolicySpec) {
			access(alice)(s)
			s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
		}
	}
	cases := []struct {
		name string
		p    fv1.Policy
		want Reach
	}{
		{"organization reaches every cluster, later ones too", pol("p", fv1.PolicyAccess, org, access(alice)), Reach{All: true}},
		{"organization with a selector still reaches every cluster", pol("p", fv1.PolicyAccess, org, selector("tier", "none")), Reach{All: true}},
		{"group reaches its clusters, namespaces or not", pol("p", fv1.PolicyAccess, groupProd, access(alice)), Reach{Clusters: []string{"a", "b"}}},
		{"group with a selector reaches its clusters", pol("p", fv1.PolicyAccess, groupProd, selector("tier", "none")), Reach{Clusters: []string{"a", "b"}}},
		{"other group", pol("p", fv1.PolicyAccess, fv1.PolicyScope{ClusterGroup: "dev"}, access(alice)), Reach{Clusters: []string{"c", "d"}}},
		{"group without clusters", pol("p", fv1.PolicyAccess, fv1.PolicyScope{ClusterGroup: "nowhere"}, access(alice)), Reach{}},
		{"cluster", pol("p", fv1.PolicyAccess, clusterA, access(alice)), Reach{Clusters: []string{"a"}}},
		{"cluster without namespaces", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Cluster: "b"}, access(alice)), Reach{Clusters: []string{"b"}}},
		{"cluster that does not exist", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Cluster: "zz"}, access(alice)), Reach{}},
		{"cluster being detached", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Cluster: "e"}, access(alice)), Reach{}},
		{"workspace reaches clusters holding its namespaces", pol("p", fv1.PolicyAccess, wsShop, access(alice)), Reach{Clusters: []string{"a", "c"}}},
		{"workspace narrowed by a selector", pol("p", fv1.PolicyAccess, wsShop, selector("tier", "front")), Reach{Clusters: []string{"a"}}},
		{"workspace selecting nothing", pol("p", fv1.PolicyAccess, wsShop, selector("tier", "none")), Reach{}},
		{"workspace with an exempt namespace", pol("p", fv1.PolicyAccess, wsShop, func(s *fv1.PolicySpec) {
			access(alice)(s)
			s.Exemptions = &fv1.Exemptions{Namespaces: []string{"web"}}
		}), Reach{Clusters: []string{"c"}}},
		{"workspace of system namespaces only", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Workspace: "ops"}, access(alice)), Reach{}},
		{"namespace", pol("p", fv1.PolicyAccess, nsAWeb, access(alice)), Reach{Clusters: []string{"a"}}},
		{"namespace that does not exist", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Namespace: &fv1.NamespaceRef{Cluster: "a", Name: "api"}}, access(alice)), Reach{}},
		{"system namespace", pol("p", fv1.PolicyAccess, fv1.PolicyScope{Namespace: &fv1.NamespaceRef{Cluster: "c", Name: "kube-system"}}, access(alice)), Reach{}},
		{"namespace not selected", pol("p", fv1.PolicyAccess, nsAWeb, selector("tier", "back")), Reach{}},
		{"not an access policy", pol("p", fv1.PolicyNetwork, org, func(s *fv1.PolicySpec) { s.Network = &fv1.NetworkSpec{Recipe: "deny-all"} }), Reach{}},
		{"access policy without spec.access", pol("p", fv1.PolicyAccess, org, nil), Reach{}},
	}
	fleet := reachFleet()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ReachOf(&tc.p, fleet)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ReachOf = %+v, want %+v", got, tc.want)
			}
			if got.None() != (!tc.want.All && len(tc.want.Clusters) == 0) {
				t.Errorf("None() = %v", got.None())
			}
		})
	}
}

func TestReachRBAC(t *testing.T) {
	proxy := func(names ...string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{
			APIGroups: []string{"proxy.flotilla.dev"}, Resources: []string{"clusters/proxy"},
			ResourceNames: names, Verbs: []string{"get", "create", "update", "patch", "delete"},
		}}
	}
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: n}
	}
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: n}
	}
	alice, devs := fv1.Subject{Kind: "User", Name: "alice"}, fv1.Subject{Kind: "Group", Name: "devs"}
	robot := fv1.Subject{Kind: "ServiceAccount", Namespace: "ci", Name: "deployer"}

	cases := []struct {
		name     string
		subjects []fv1.Subject
		reach    Reach
		rules    []rbacv1.PolicyRule
		bound    []rbacv1.Subject
	}{
		{"clusters by name", []fv1.Subject{alice}, Reach{Clusters: []string{"a", "b"}}, proxy("a", "b"), []rbacv1.Subject{user("alice")}},
		{"every cluster: no resourceNames", []fv1.Subject{devs}, Reach{All: true}, proxy(), []rbacv1.Subject{group("devs")}},
		// Empty resourceNames would grant every cluster.
		{"no cluster: no rule", []fv1.Subject{alice}, Reach{}, nil, []rbacv1.Subject{user("alice")}},
		{"empty list of clusters: no rule", []fv1.Subject{alice}, Reach{Clusters: []string{}}, nil, []rbacv1.Subject{user("alice")}},
		{"users and groups, once each; service accounts left out", []fv1.Subject{alice, robot, devs, alice}, Reach{Clusters: []string{"a"}}, proxy("a"), []rbacv1.Subject{user("alice"), group("devs")}},
		{"service accounts only: no one bound", []fv1.Subject{robot}, Reach{All: true}, proxy(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pol("ops", fv1.PolicyAccess, groupProd, access(tc.subjects...))
			role, binding := ReachRBAC(&p, tc.reach)
			labels := map[string]string{"flotilla.dev/reach-policy": "ops"}
			if role.Name != "flotilla:reach:ops" || !reflect.DeepEqual(role.Labels, labels) {
				t.Errorf("role %q labels %v", role.Name, role.Labels)
			}
			if !reflect.DeepEqual(role.Rules, tc.rules) {
				t.Errorf("rules = %+v, want %+v", role.Rules, tc.rules)
			}
			if binding.Name != role.Name || !reflect.DeepEqual(binding.Labels, labels) {
				t.Errorf("binding %q labels %v", binding.Name, binding.Labels)
			}
			if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}); binding.RoleRef != want {
				t.Errorf("roleRef = %+v", binding.RoleRef)
			}
			if !reflect.DeepEqual(binding.Subjects, tc.bound) {
				t.Errorf("subjects = %+v, want %+v", binding.Subjects, tc.bound)
			}
		})
	}
}

// What ReachRBAC returns is the caller's: changing it leaves shared values alone.
func TestReachRBACCopies(t *testing.T) {
	p := pol("ops", fv1.PolicyAccess, groupProd, access(fv1.Subject{Kind: "User", Name: "alice"}))
	r := Reach{Clusters: []string{"a"}}
	role, binding := ReachRBAC(&p, r)
	role.Rules[0].Verbs[0], role.Rules[0].ResourceNames[0] = "x", "x"
	role.Labels["k"] = "v"
	if fv1.ReachVerbs[0] != "get" || r.Clusters[0] != "a" {
		t.Error("the role shares its verbs or names")
	}
	if _, ok := binding.Labels["k"]; ok {
		t.Error("the role and the binding share their labels")
	}
}
