package attach_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/registration"
)

// Token IDs are short, so among thousands two can be drawn alike: the second
// is drawn again rather than failing the attach.
func TestTakenTokenIDIsDrawnAgain(t *testing.T) {
	ctx := context.Background()
	real, err := client.NewWithWatch(env.Hub.Config, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	taken := ""
	cl := interceptor.NewClient(real, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if s, ok := obj.(*corev1.Secret); ok && taken == "" {
				// Another attach takes the same ID first.
				taken = s.Name
				other := s.DeepCopy()
				other.Labels = map[string]string{fv1.LabelCluster: "other"}
				if err := c.Create(ctx, other); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	tok, err := registration.IssueToken(ctx, cl, "drawn-again", time.Hour)
	if err != nil {
		t.Fatalf("a taken token ID failed the attach: %v", err)
	}
	if tok.SecretName() == taken {
		t.Fatalf("token %s reuses the taken ID", tok.SecretName())
	}
	var s corev1.Secret
	if err := real.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: tok.SecretName()}, &s); err != nil || s.Labels[fv1.LabelCluster] != "drawn-again" {
		t.Fatalf("token Secret: %v %v", err, s.Labels)
	}
}
