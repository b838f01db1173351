package policy

import (
	"testing"
)

// FuzzDecodeDesired reads a cluster's desired-policies ConfigMap as its
// agent does: what the hub (or whoever could write the ConfigMap) put
// there. It must not panic; what it returns must be usable objects.
func FuzzDecodeDesired(f *testing.F) {
	for _, seed := range [][3]string{
		{`[{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"q","namespace":"a"}}]`, `{"a":{"level":"baseline"}}`, `{"p":3}`},
		{`[]`, `{}`, ``},
		{``, ``, ``},
		{`[null]`, `null`, `null`},
		{`[{"kind":5,"metadata":"x"}]`, `{"a":5}`, `{"p":"x"}`},
		{`{}`, `[]`, `[]`},
		{`[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + "\xff" + `"}}]`, `{"":{}}`, `{"p":1e400}`},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, objects, podSecurity, audits string) {
		data := map[string]string{KeyObjects: objects, KeyPodSecurity: podSecurity, KeyAudits: audits}
		DecodeAudits(data)
		objs, _, err := Decode(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			// What the agent reads of each before it applies it.
			_ = o.GetObjectKind().GroupVersionKind()
			_, _ = o.GetName(), o.GetNamespace()
			_ = o.GetLabels()
			_, _ = o.MarshalJSON()
		}
	})
}
