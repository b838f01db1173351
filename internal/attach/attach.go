// Package attach adds clusters to the hub and removes them: it creates the
// Cluster and its single-use bootstrap credential, renders or installs the
// agent, and detaches. The CLI and `flotilla up` are thin layers over it.
package attach

import (
	"context"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/registration"
)

// Options describe a cluster to attach.
type Options struct {
	Name   string
	Group  string
	Labels map[string]string
	// TTL of the bootstrap credential.
	TTL time.Duration
	// ReadOnly attaches the cluster read-only (spec.readOnly): run its
	// agent with AgentOptions.ReadOnly.
	ReadOnly bool
}

// Attach creates the Cluster on the hub and a bootstrap credential for it,
// and returns the bootstrap kubeconfig. On failure nothing is left behind.
func Attach(ctx context.Context, cl client.Client, hub *rest.Config, o Options) ([]byte, error) {
	if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 || len(o.Name) > 55 {
		return nil, fmt.Errorf("cluster name %q is not valid: it must be a DNS-1123 label (lower case letters, digits and '-', starting and ending with a letter or digit) of at most 55 characters", o.Name)
	}
	if o.Group == "" {
		o.Group = fv1.DefaultName
	}
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if err := cl.Get(ctx, client.ObjectKey{Name: o.Group}, &fv1.ClusterGroup{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cluster group %q does not exist; create it with 'flotilla clustergroup create %s' or choose another --group", o.Group, o.Group)
		}
		return nil, err
	}
	c := &fv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: o.Labels}, Spec: fv1.ClusterSpec{Group: o.Group, ReadOnly: o.ReadOnly}}
	if err := cl.Create(ctx, c); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("cluster %q already exists; detach it first or choose another name", o.Name)
		}
		return nil, err
	}
	tok, err := registration.IssueToken(ctx, cl, o.Name, o.TTL)
	if err != nil {
		cl.Delete(context.WithoutCancel(ctx), c)
		return nil, err
	}
	ca := hub.CAData
	if len(ca) == 0 && hub.CAFile != "" {
		if ca, err = os.ReadFile(hub.CAFile); err != nil {
			return nil, err
		}
	}
	return registration.BootstrapKubeconfig(hub.Host, ca, o.Name, string(c.UID), tok)
}

// Detach deletes the Cluster. The agent then removes what Flotilla created
// in the cluster and the hub removes the cluster's namespace and
// credentials; with force the hub does so without waiting for the agent. It
// waits up to timeout for the Cluster to be gone.
func Detach(ctx context.Context, cl client.Client, name string, force bool, timeout time.Duration) error {
	var c fv1.Cluster
	if err := cl.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %q not found; see 'flotilla cluster list'", name)
		}
		return err
	}
	if c.Spec.Lifecycle != nil {
		// Its deletion would delete the cluster itself.
		return fmt.Errorf("cluster %s was made by Flotilla, so detaching it would delete it; to delete it, run 'flotilla cluster delete %s'", name, name)
	}
	if force {
		patch := client.MergeFrom(c.DeepCopy())
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[fv1.AnnotationForceDetach] = "true"
		if err := cl.Patch(ctx, &c, patch); err != nil {
			return err
		}
	}
	if err := cl.Delete(ctx, &c); client.IgnoreNotFound(err) != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Name: name}, &fv1.Cluster{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil && !wait.Interrupted(err) {
		// Not the timeout: the hub failed to answer (stopped, unreachable),
		// which says nothing of the agent; say what happened instead.
		return fmt.Errorf("waiting for cluster %q to detach: %w; run 'flotilla cluster detach %s' again once the hub answers", name, err, name)
	}
	if err != nil {
		return fmt.Errorf("cluster %q is still detaching after %s: its agent has not confirmed the cleanup; if the cluster is gone for good, run 'flotilla cluster detach %s --force'", name, timeout, name)
	}
	return nil
}
