package hub

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"flotilla.dev/flotilla/config/crd"
)

// InstallCRDs applies Flotilla's CRDs with server-side apply and waits until
// each is served, so controllers can start watching at once. It returns when
// the first write to them will be taken without delay: the apiserver holds a
// create for 2 s when its CRD was established less than 2 s before.
func InstallCRDs(ctx context.Context, cfg *rest.Config) (writable time.Time, err error) {
	cs, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return writable, err
	}
	files, err := fs.Glob(crd.Files, "*.yaml")
	if err != nil {
		return writable, err
	}
	force := true
	var names []string
	for _, f := range files {
		data, _ := crd.Files.ReadFile(f)
		var obj apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &obj); err != nil {
			return writable, fmt.Errorf("embedded CRD %s: %w", f, err)
		}
		obj.APIVersion, obj.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		body, err := yaml.YAMLToJSON(data)
		if err != nil {
			return writable, err
		}
		// The apiserver may still be starting its CRD machinery: retry briefly.
		var last error
		err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, last = cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, obj.Name, types.ApplyPatchType, body,
				metav1.PatchOptions{FieldManager: "flotilla-hub", Force: &force})
			return last == nil, nil
		})
		if err != nil {
			return writable, fmt.Errorf("installing CRD %s: %v", obj.Name, last)
		}
		names = append(names, obj.Name)
	}
	// Established is not yet served: poll each resource's list path until it
	// answers, without client-go's retry-after waits (a second each).
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			c, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if at, ok := established(c, err); ok {
				path := "/apis/" + c.Spec.Group + "/" + c.Spec.Versions[0].Name + "/" + c.Spec.Names.Plural
				if _, err := cs.Discovery().RESTClient().Get().AbsPath(path).Param("limit", "1").MaxRetries(0).DoRaw(ctx); err == nil {
					if w := at.Add(2*time.Second + 50*time.Millisecond); w.After(writable) {
						writable = w
					}
					break
				}
			}
			if time.Now().After(deadline) {
				return writable, fmt.Errorf("CRD %s not established after 30s", name)
			}
			select {
			case <-ctx.Done():
				return writable, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return writable, nil
}

// established returns when c became Established, if it is.
func established(c *apiextensionsv1.CustomResourceDefinition, err error) (time.Time, bool) {
	if err != nil {
		return time.Time{}, false
	}
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return cond.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}
