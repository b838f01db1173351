package clusterapi

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
)

// AnnotationImportedFrom on a hub Cluster names the Cluster API Cluster it
// was imported from: clusterapi/NAMESPACE/NAME.
const AnnotationImportedFrom = "flotilla.dev/imported-from"

// ImportOptions say which Cluster API clusters to import, and how.
type ImportOptions struct {
	// Management is the management cluster's client configuration.
	Management *rest.Config
	// Namespace on the management cluster; "" for all namespaces.
	Namespace string
	// Group on the hub that the clusters join; "" for the default.
	Group string
	// AgentImage is the container image of the agents installed.
	AgentImage string
}

// Outcome is what an import did with one Cluster API Cluster.
type Outcome string

// Outcomes.
const (
	Attached Outcome = "attached"
	Skipped  Outcome = "skipped"
	Failed   Outcome = "failed"
)

// Imported is the outcome of one Cluster API Cluster.
type Imported struct {
	// Source is the Cluster API Cluster, NAMESPACE/NAME.
	Source string
	// Cluster is the name on the hub.
	Cluster string
	Outcome Outcome
	// Message says what was done, or why not.
	Message string
}

// Import attaches the Cluster API Clusters of a management cluster to the
// hub: each whose kubeconfig Cluster API has published becomes a hub
// Cluster of the same name, without a lifecycle (Flotilla did not make it
// and will not scale, upgrade or delete it), annotated with where it came
// from, and gets the agent installed with that kubeconfig. Clusters the
// hub has already and clusters without a kubeconfig yet are skipped.
// report, if set, is told of each as it is done. The error is for an
// import that could not start (the management cluster cannot be listed,
// the group does not exist); one cluster's failure is in its outcome.
func Import(ctx context.Context, hub client.Client, hubCfg *rest.Config, o ImportOptions, report func(Imported)) ([]Imported, error) {
	if o.Group == "" {
		o.Group = fv1.DefaultName
	}
	if err := hub.Get(ctx, client.ObjectKey{Name: o.Group}, &fv1.ClusterGroup{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cluster group %q does not exist; create it with 'flotilla clustergroup create %s' or choose another --group", o.Group, o.Group)
		}
		return nil, err
	}
	m, err := newManagement(o.Management, "")
	if err != nil {
		return nil, err
	}
	list, err := m.dyn.Resource(ClustersResource).Namespace(o.Namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, m.notServed(ClustersResource.Resource)
	}
	if err != nil {
		return nil, m.explain(err, "listing Cluster API Clusters")
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		if items[i].GetNamespace() != items[j].GetNamespace() {
			return items[i].GetNamespace() < items[j].GetNamespace()
		}
		return items[i].GetName() < items[j].GetName()
	})
	var out []Imported
	for i := range items {
		cl := &items[i]
		r := importOne(ctx, hub, hubCfg, m, o, cl.GetNamespace(), cl.GetName(), cl.GetLabels()[fv1.LabelCluster], cl.GetDeletionTimestamp() != nil)
		out = append(out, r)
		if report != nil {
			report(r)
		}
	}
	return out, nil
}

// importOne imports Cluster API Cluster ns/name; madeFor is its Flotilla
// label, set if a Flotilla hub made it.
func importOne(ctx context.Context, hub client.Client, hubCfg *rest.Config, m *management, o ImportOptions, ns, name, madeFor string, deleting bool) Imported {
	r := Imported{Source: ns + "/" + name, Cluster: name}
	skip := func(format string, a ...any) Imported {
		r.Outcome, r.Message = Skipped, fmt.Sprintf(format, a...)
		return r
	}
	fail := func(format string, a ...any) Imported {
		r.Outcome, r.Message = Failed, fmt.Sprintf(format, a...)
		return r
	}
	from := "clusterapi/" + ns + "/" + name
	var existing fv1.Cluster
	err := hub.Get(ctx, client.ObjectKey{Name: name}, &existing)
	switch {
	case err == nil && existing.Annotations[AnnotationImportedFrom] == from:
		return skip("already on the hub as cluster %s (imported before)", name)
	case err == nil && existing.Spec.Lifecycle != nil && existing.Spec.Lifecycle.ClusterAPI != nil && madeFor == name && namespaceOf(existing.Spec.Lifecycle.ClusterAPI) == ns:
		return skip("already on the hub as cluster %s: Flotilla made it", name)
	case err == nil:
		return skip("the hub already has another cluster named %s; attach this one under another name with 'flotilla cluster attach OTHER-NAME --cluster-kubeconfig KUBECONFIG' (its kubeconfig is the Secret %s/%s, key value)", name, ns, KubeconfigSecret(name))
	case !apierrors.IsNotFound(err):
		return fail("reading cluster %s on the hub: %v", name, err)
	}
	if madeFor != "" {
		return skip("a Flotilla hub made it (label %s=%s), which manages it; not imported", fv1.LabelCluster, madeFor)
	}
	if deleting {
		return skip("Cluster API is deleting it")
	}
	kc, err := m.kubeconfig(ctx, ns, name)
	if err != nil {
		return fail("%v", err)
	}
	if kc == nil {
		return skip("no kubeconfig yet: Cluster API has not published the Secret %s/%s; import again once its control plane is up", ns, KubeconfigSecret(name))
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return fail("the kubeconfig in Secret %s/%s is not usable: %v", ns, KubeconfigSecret(name), err)
	}
	cfg.Timeout = managementTimeout
	boot, err := attach.Attach(ctx, hub, hubCfg, attach.Options{Name: name, Group: o.Group, TTL: tokenTTL})
	if err != nil {
		return fail("%v", err)
	}
	// Nothing half-made: a cluster whose import fails leaves the hub again.
	undo := func() { _ = attach.Detach(context.WithoutCancel(ctx), hub, name, true, 30*time.Second) }
	var c fv1.Cluster
	if err := hub.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
		undo()
		return fail("reading cluster %s on the hub: %v", name, err)
	}
	before := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationImportedFrom] = from
	if err := hub.Patch(ctx, &c, client.MergeFrom(before)); err != nil {
		undo()
		return fail("annotating cluster %s on the hub: %v", name, err)
	}
	if err := attach.Install(ctx, cfg, attach.AgentObjects(boot, o.AgentImage), clientgoscheme.Scheme); err != nil {
		undo()
		return fail("%v (with the kubeconfig in Secret %s/%s); nothing was left on the hub", err, ns, KubeconfigSecret(name))
	}
	r.Outcome, r.Message = Attached, fmt.Sprintf("attached as cluster %s; the agent was installed in its namespace flotilla-system", name)
	return r
}
