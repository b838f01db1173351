package locations

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backup/jobs"
	"flotilla.dev/flotilla/internal/backup/store"
)

// Opener opens BackupLocations on the hub.
type Opener struct {
	// Client reads credentials Secrets.
	Client client.Reader
	// HubDir holds the archives of hub locations, one folder each.
	HubDir string
	// Namespace holds credentials Secrets.
	Namespace string

	mu   sync.Mutex
	dirs map[string]*store.Dir // hub locations opened, kept open
}

// Open returns the store of loc.
func (o *Opener) Open(ctx context.Context, loc *fv1.BackupLocation) (store.Store, error) {
	switch loc.Spec.Type {
	case fv1.LocationHub:
		return o.Hub(loc.Name)
	case fv1.LocationS3:
		c, err := o.S3Config(ctx, loc)
		if err != nil {
			return nil, err
		}
		return store.NewS3(*c)
	}
	return nil, fmt.Errorf("backup location %s: unknown type %q", loc.Name, loc.Spec.Type)
}

// Hub is the store of the hub location called name.
func (o *Opener) Hub(name string) (*store.Dir, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d := o.dirs[name]; d != nil {
		return d, nil
	}
	d, err := store.NewDir(filepath.Join(o.HubDir, name))
	if err != nil {
		return nil, err
	}
	if o.dirs == nil {
		o.dirs = map[string]*store.Dir{}
	}
	o.dirs[name] = d
	return d, nil
}

// Access is what an agent is told to reach loc with: for S3, the bucket
// and its credentials.
func (o *Opener) Access(ctx context.Context, loc *fv1.BackupLocation) (jobs.Location, error) {
	a := jobs.Location{Name: loc.Name, Type: loc.Spec.Type}
	if loc.Spec.Type == fv1.LocationS3 {
		c, err := o.S3Config(ctx, loc)
		if err != nil {
			return a, err
		}
		a.S3 = c
	}
	return a, nil
}

// S3Config reads an S3 location and its credentials Secret.
func (o *Opener) S3Config(ctx context.Context, loc *fv1.BackupLocation) (*store.S3Config, error) {
	s := loc.Spec.S3
	if s == nil {
		return nil, fmt.Errorf("backup location %s is of type s3 but has no spec.s3", loc.Name)
	}
	var sec corev1.Secret
	if err := o.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: s.CredentialsSecret}, &sec); err != nil {
		return nil, fmt.Errorf("backup location %s: reading credentials Secret %s/%s: %w", loc.Name, o.Namespace, s.CredentialsSecret, err)
	}
	key, secret := string(sec.Data[fv1.S3AccessKeyID]), string(sec.Data[fv1.S3SecretAccessKey])
	if key == "" || secret == "" {
		return nil, fmt.Errorf("backup location %s: Secret %s/%s must hold %s and %s", loc.Name, o.Namespace, s.CredentialsSecret, fv1.S3AccessKeyID, fv1.S3SecretAccessKey)
	}
	return &store.S3Config{
		Name: loc.Name, Endpoint: s.Endpoint, Bucket: s.Bucket, Prefix: s.Prefix, Region: s.Region, PathStyle: s.PathStyle,
		CABundle: []byte(s.CABundle), AccessKey: key, SecretKey: secret, SessionToken: string(sec.Data[fv1.S3SessionToken]),
	}, nil
}

// Get reads the BackupLocation called name.
func Get(ctx context.Context, c client.Reader, name string) (*fv1.BackupLocation, error) {
	var loc fv1.BackupLocation
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &loc); err != nil {
		return nil, fmt.Errorf("backup location %s: %w", name, err)
	}
	return &loc, nil
}
