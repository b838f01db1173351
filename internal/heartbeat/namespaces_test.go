package heartbeat

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

func TestNamespacesDigest(t *testing.T) {
	cn := func(name, rv string) fv1.ClusterNamespace {
		return fv1.ClusterNamespace{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	a := NamespacesDigest([]fv1.ClusterNamespace{cn("web", "10"), cn("db", "12")})
	if b := NamespacesDigest([]fv1.ClusterNamespace{cn("db", "12"), cn("web", "10")}); a != b {
		t.Errorf("the order of the list changed the digest: %s, %s", a, b)
	}
	for name, other := range map[string][]fv1.ClusterNamespace{
		"a namespace written since": {cn("web", "10"), cn("db", "13")},
		"a namespace more":          {cn("web", "10"), cn("db", "12"), cn("api", "14")},
		"a namespace less":          {cn("web", "10")},
		"none":                      nil,
	} {
		if NamespacesDigest(other) == a {
			t.Errorf("%s: same digest %s", name, a)
		}
	}
}

func TestTokenCarriesTheNamespacesDigest(t *testing.T) {
	c := NewChanges()
	if tok, _ := ParseToken(c.Token("a")); tok.Namespaces != "" {
		t.Errorf("a hub that digests nothing sent %q", tok.Namespaces)
	}
	c.DigestNamespacesWith(func(cluster string) string { return "d-" + cluster })
	tok, ok := ParseToken(c.Token("a"))
	if !ok || tok.Namespaces != "d-a" {
		t.Errorf("token %+v (%v), want the namespaces digest d-a", tok, ok)
	}
	// An earlier hub's token, without it, still parses.
	old, ok := ParseToken("e.1.2.3.p")
	if want := (Token{Epoch: "e", Revs: [kinds]uint64{1, 2, 3}, Policies: "p"}); !ok || old != want {
		t.Errorf("an earlier hub's token parsed to %+v (%v), want %+v", old, ok, want)
	}
}
