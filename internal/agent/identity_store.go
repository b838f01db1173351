package agent

import (
	"context"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// identityStore keeps the agent's hub identity across restarts, so that a
// restarted agent does not register again (its bootstrap credential is
// single-use).
type identityStore interface {
	// load returns nil when nothing is stored.
	load(ctx context.Context) ([]byte, error)
	save(ctx context.Context, data []byte) error
	remove(ctx context.Context) error
	String() string
}

// fileStore keeps the identity in the data directory: right for an agent
// that runs as a process next to its disk.
type fileStore struct{ path string }

func (f fileStore) load(context.Context) ([]byte, error) {
	data, err := os.ReadFile(f.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return data, err
}

func (f fileStore) save(_ context.Context, data []byte) error {
	if err := os.WriteFile(f.path+".tmp", data, 0o600); err != nil {
		return err
	}
	return os.Rename(f.path+".tmp", f.path)
}

func (f fileStore) remove(context.Context) error {
	if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (f fileStore) String() string { return f.path }

// secretStore keeps the identity in a Secret of the member cluster: an agent
// in a pod loses its disk when the pod goes.
type secretStore struct {
	secrets         dynamic.ResourceInterface
	namespace, name string
}

const identityKey = "kubeconfig"

func newSecretStore(dyn dynamic.Interface, ref string) (secretStore, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return secretStore{}, fmt.Errorf("identity Secret %q is not NAMESPACE/NAME", ref)
	}
	return secretStore{secrets: dyn.Resource(secretsResource).Namespace(ns), namespace: ns, name: name}, nil
}

func (s secretStore) get(ctx context.Context) (*corev1.Secret, error) {
	u, err := s.secrets.Get(ctx, s.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return as[corev1.Secret](u)
}

func (s secretStore) load(ctx context.Context) ([]byte, error) {
	sec, err := s.get(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the agent identity from Secret %s: %w", s, err)
	}
	return sec.Data[identityKey], nil
}

func (s secretStore) save(ctx context.Context, data []byte) error {
	sec, err := s.get(ctx)
	create := apierrors.IsNotFound(err)
	switch {
	case create:
		sec = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "flotilla"}},
			Type:       corev1.SecretTypeOpaque,
		}
	case err != nil:
		return fmt.Errorf("saving the agent identity in Secret %s: %w", s, err)
	}
	sec.Data = map[string][]byte{identityKey: data}
	u, err := unstructuredOf(sec)
	if err != nil {
		return err
	}
	if create {
		_, err = s.secrets.Create(ctx, u, metav1.CreateOptions{})
	} else {
		_, err = s.secrets.Update(ctx, u, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving the agent identity in Secret %s: %w", s, err)
	}
	return nil
}

func (s secretStore) remove(ctx context.Context) error {
	err := s.secrets.Delete(ctx, s.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func (s secretStore) String() string { return s.namespace + "/" + s.name }
