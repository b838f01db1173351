package policy

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Keys of a cluster's desired state, as Encode renders it for its agent.
const (
	KeyObjects     = "objects.json"
	KeyPodSecurity = "podSecurity.json"
	KeyAudits      = "audits.json"
)

// Encode renders d as the data the cluster's agent applies.
func Encode(d Desired) (map[string]string, error) {
	objs := make([]map[string]any, 0, len(d.Objects))
	for _, o := range d.Objects {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u, "status")
		objs = append(objs, u)
	}
	ob, err := json.Marshal(objs)
	if err != nil {
		return nil, err
	}
	ps, err := json.Marshal(d.PodSecurity)
	if err != nil {
		return nil, err
	}
	data := map[string]string{KeyObjects: string(ob), KeyPodSecurity: string(ps)}
	if len(d.Audits) > 0 {
		ab, err := json.Marshal(d.Audits)
		if err != nil {
			return nil, err
		}
		data[KeyAudits] = string(ab)
	}
	if d.NotEnforced != nil {
		nb, err := json.Marshal(d.NotEnforced)
		if err != nil {
			return nil, err
		}
		data[KeyNotEnforced] = string(nb)
	}
	return data, nil
}

// DecodeAudits reads the audit-mode policies and their generations from
// Encode's data.
func DecodeAudits(data map[string]string) (map[string]int64, error) {
	if data[KeyAudits] == "" {
		return nil, nil
	}
	var out map[string]int64
	err := json.Unmarshal([]byte(data[KeyAudits]), &out)
	return out, err
}

// Decode reads Encode's data back.
func Decode(data map[string]string) ([]*unstructured.Unstructured, map[string]NamespaceSecurity, error) {
	var raw []map[string]any
	if err := json.Unmarshal([]byte(data[KeyObjects]), &raw); err != nil && data[KeyObjects] != "" {
		return nil, nil, err
	}
	objs := make([]*unstructured.Unstructured, len(raw))
	for i, r := range raw {
		objs[i] = &unstructured.Unstructured{Object: r}
	}
	ps := map[string]NamespaceSecurity{}
	if data[KeyPodSecurity] != "" {
		if err := json.Unmarshal([]byte(data[KeyPodSecurity]), &ps); err != nil {
			return nil, nil, err
		}
	}
	return objs, ps, nil
}
