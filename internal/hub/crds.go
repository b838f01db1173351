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
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"flotilla.dev/flotilla/config/crd"
)

// InstallCRDs applies Flotilla's CRDs with server-side apply and waits until
// each is Established, so controllers can start watching at once.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	cs, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return err
	}
	files, err := fs.Glob(crd.Files, "*.yaml")
	if err != nil {
		return err
	}
	force := true
	var names []string
	for _, f := range files {
		data, _ := crd.Files.ReadFile(f)
		var obj apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("embedded CRD %s: %w", f, err)
		}
		obj.APIVersion, obj.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		body, err := yaml.YAMLToJSON(data)
		if err != nil {
			return err
		}
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, obj.Name, types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: "flotilla-hub", Force: &force}); err != nil {
			return fmt.Errorf("installing CRD %s: %w", obj.Name, err)
		}
		names = append(names, obj.Name)
	}
	// Established is not yet served: poll each resource's list path until it
	// answers, without client-go's retry-after waits (a second each).
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			c, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err == nil && established(c) {
				path := "/apis/" + c.Spec.Group + "/" + c.Spec.Versions[0].Name + "/" + c.Spec.Names.Plural
				if _, err := cs.Discovery().RESTClient().Get().AbsPath(path).Param("limit", "1").MaxRetries(0).DoRaw(ctx); err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30s", name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
