// Package clusterapi is the Cluster API lifecycle provider: it has Cluster
// API make, scale, upgrade and delete a cluster on a management cluster,
// as a managed topology of a ClusterClass, and reads back where the cluster
// stands. Flotilla writes only the cluster.x-k8s.io Cluster (its
// spec.topology); Cluster API and its infrastructure provider do the rest.
// Once Cluster API publishes the cluster's kubeconfig, the provider
// installs Flotilla's agent into the cluster, which then attaches itself.
//
// Cluster API's objects are handled as unstructured objects of
// cluster.x-k8s.io/v1beta2: Flotilla does not link Cluster API.
//
// The package also imports clusters Cluster API made without Flotilla
// (Import): it attaches them, as clusters Flotilla does not manage.
package clusterapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/attach"
	"flotilla.dev/flotilla/internal/lifecycle"
	"flotilla.dev/flotilla/internal/registration"
)

// Cluster API's resources, at the version whose Cluster has
// spec.topology.classRef.
var (
	ClustersResource           = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "clusters"}
	ClusterClassesResource     = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "clusterclasses"}
	MachineDeploymentsResource = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "machinedeployments"}
)

const (
	apiVersion = "cluster.x-k8s.io/v1beta2"
	// fieldOwner owns the fields Flotilla applies to Cluster API Clusters.
	fieldOwner = "flotilla"
	// clusterNameLabel and deploymentNameLabel are Cluster API's: the
	// cluster of an object, and the topology name of a MachineDeployment.
	clusterNameLabel    = "cluster.x-k8s.io/cluster-name"
	deploymentNameLabel = "topology.cluster.x-k8s.io/deployment-name"
	// DefaultNamespace is where Cluster API Clusters go when the spec says
	// no namespace.
	DefaultNamespace = "default"
	// AnnotationAgent on a hub Cluster says where its agent stands: the
	// time it was installed into the cluster (RFC 3339), then "registered"
	// once the cluster was Healthy on the hub.
	AnnotationAgent = "flotilla.dev/clusterapi-agent"
	// AnnotationCluster on a hub Cluster names the Cluster API Cluster
	// Flotilla applied for it, NAMESPACE/NAME, once it has: a cluster
	// deleted before has nothing to delete on the management cluster.
	AnnotationCluster = "flotilla.dev/clusterapi-cluster"
	agentRegistered   = "registered"
	// tokenTTL is how long an agent's bootstrap credential is valid; an
	// agent that has not registered by then is installed again, with a new
	// one.
	tokenTTL = time.Hour
	// managementTimeout bounds one request to a management or workload
	// cluster.
	managementTimeout = 10 * time.Second
)

// KubeconfigSecret names the Secret in which Cluster API publishes
// cluster's admin kubeconfig (key "value"), beside the Cluster.
func KubeconfigSecret(cluster string) string { return cluster + "-kubeconfig" }

// Provider has Cluster API make clusters. Its zero value is not usable:
// set Hub, HubConfig and Namespace.
type Provider struct {
	// Hub is the hub's client.
	Hub client.Client
	// Secrets reads the hub's Secrets (management kubeconfigs); the hub's
	// cached client sees only its own. Default: Hub.
	Secrets client.Reader
	// HubConfig is the address and CA by which agents reach the hub.
	HubConfig *rest.Config
	// Namespace on the hub of the Secrets that hold management
	// clusters' kubeconfigs (flotilla-system).
	Namespace string
	// AgentImage is the container image of the agents it installs.
	AgentImage string

	mu         sync.Mutex
	management map[string]*management // by the Secret it came from
}

var _ lifecycle.Provisioner = (*Provider)(nil)

// management is a management cluster's clients.
type management struct {
	host   string
	secret string // NAMESPACE/NAME of the hub Secret it came from
	sum    string // the SHA-256 of the kubeconfig in it
	dyn    dynamic.Interface
	core   kubernetes.Interface
}

// Reconcile applies c's topology to its Cluster API Cluster and says where
// the cluster stands; once Cluster API has published the cluster's
// kubeconfig it returns it and installs the agent into the cluster, once.
func (p *Provider) Reconcile(ctx context.Context, c *fv1.Cluster) (lifecycle.Result, error) {
	spec := c.Spec.Lifecycle
	if spec == nil || spec.ClusterAPI == nil {
		return lifecycle.Result{}, fmt.Errorf("cluster %s has no spec.lifecycle.clusterAPI: set the management cluster's kubeconfig Secret and the ClusterClass there", c.Name)
	}
	m, err := p.connect(ctx, spec.ClusterAPI.KubeconfigSecret)
	if err != nil {
		return lifecycle.Result{}, err
	}
	ns := namespaceOf(spec.ClusterAPI)
	ref := ns + "/" + c.Name
	if made := c.Annotations[AnnotationCluster]; made != "" && made != ref {
		return lifecycle.Result{}, fmt.Errorf("the cluster was made as the Cluster API Cluster %s and cannot move to namespace %s; set spec.lifecycle.clusterAPI.namespace back to %s", made, ns, strings.SplitN(made, "/", 2)[0])
	}
	cur, err := m.dyn.Resource(ClustersResource).Namespace(ns).Get(ctx, c.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return lifecycle.Result{}, m.explain(err, "reading Cluster "+ref)
	}
	state := c.Annotations[AnnotationAgent]
	if cur == nil && c.Annotations[AnnotationCluster] == ref {
		// Made once, gone now: not made again behind its owner's back.
		st := failed(fv1.LifecycleStatus{}, fmt.Sprintf("the Cluster API Cluster %s is gone from the management cluster: it was deleted outside Flotilla; remove the cluster from the hub with 'flotilla cluster delete %s'", ref, c.Name))
		st.Progress = "the Cluster API Cluster is gone"
		return lifecycle.Result{Status: st}, nil
	}
	if cur != nil && !ours(cur, c.Name) {
		return lifecycle.Result{}, fmt.Errorf("the management cluster already has a Cluster API Cluster %s that Flotilla did not make (it lacks the label %s=%s); choose another cluster name or Cluster API namespace, or attach that cluster with 'flotilla cluster import'", ref, fv1.LabelCluster, c.Name)
	}
	if cur != nil && cur.GetDeletionTimestamp() != nil {
		return lifecycle.Result{Status: fv1.LifecycleStatus{Phase: fv1.LifecycleDeleting, Progress: "Cluster API is deleting the cluster: it was deleted on the management cluster"}}, nil
	}
	if err := m.checkClass(ctx, ns, spec); err != nil {
		return lifecycle.Result{}, err
	}
	desired := Desired(c.Name, spec)
	if cur != nil {
		// Applied to the Cluster read above only: an apply creates what is
		// missing, so one deleted meanwhile would be made again.
		desired.SetUID(cur.GetUID())
	}
	applied, err := m.dyn.Resource(ClustersResource).Namespace(ns).Apply(ctx, c.Name, desired, metav1.ApplyOptions{FieldManager: fieldOwner, Force: true})
	if apierrors.IsConflict(err) {
		return lifecycle.Result{}, fmt.Errorf("the Cluster API Cluster %s was deleted or replaced on the management cluster while Flotilla applied it; looking again", ref)
	}
	if err != nil {
		return lifecycle.Result{}, m.explain(err, "applying Cluster "+ref)
	}
	if err := p.annotate(ctx, c, AnnotationCluster, ref); err != nil {
		return lifecycle.Result{}, err
	}
	pools, err := m.pools(ctx, ns, c.Name)
	if err != nil {
		return lifecycle.Result{}, err
	}
	creating := state != agentRegistered
	res := lifecycle.Result{Status: Assess(spec, applied, pools, creating)}
	if !creating || res.Status.Phase == fv1.LifecycleFailed || res.Status.Phase == fv1.LifecycleDeleting {
		res.Kubeconfig, err = m.kubeconfig(ctx, ns, c.Name)
		return res, err
	}

	// Creating: the kubeconfig, then the agent, then a Healthy cluster.
	kc, err := m.kubeconfig(ctx, ns, c.Name)
	if err != nil {
		return res, err
	}
	res.Kubeconfig = kc
	st := &res.Status
	if kc == nil {
		if st.Phase == fv1.LifecycleReady {
			st.Phase, st.Progress = fv1.LifecycleProvisioning, "waiting for Cluster API to publish the kubeconfig"
			st.Conditions = nil
		}
		return res, nil
	}
	if p.mustInstall(c) {
		if err := p.installAgent(ctx, c, kc); err != nil {
			// The kubeconfig is published all the same; tried again next pass.
			st.Phase, st.Progress = fv1.LifecycleProvisioning, "installing the agent"
			*st = waiting(*st, fmt.Sprintf("installing Flotilla's agent into the cluster failed (tried again): %v", err))
			return res, nil
		}
	}
	if st.Phase != fv1.LifecycleReady {
		return res, nil
	}
	if c.Status.Health != fv1.HealthHealthy {
		st.Phase, st.Progress = fv1.LifecycleProvisioning, "waiting for the agent"
		health := string(c.Status.Health)
		if health == "" {
			health = "not reported yet"
		}
		*st = waiting(*st, fmt.Sprintf("the agent was installed in the cluster's namespace flotilla-system; waiting for it to register and the cluster to be Healthy (health: %s)", health))
		return res, nil
	}
	return res, p.annotate(ctx, c, AnnotationAgent, agentRegistered)
}

// Delete deletes c's Cluster API Cluster; gone once the management
// cluster no longer has it. A Cluster there that Flotilla did not make is
// left alone.
func (p *Provider) Delete(ctx context.Context, c *fv1.Cluster) (bool, error) {
	spec := c.Spec.Lifecycle
	if spec == nil || spec.ClusterAPI == nil || c.Annotations[AnnotationCluster] == "" {
		return true, nil // nothing was made
	}
	m, err := p.connect(ctx, spec.ClusterAPI.KubeconfigSecret)
	if err != nil {
		return false, fmt.Errorf("%w; or, to forget the cluster without deleting it, remove the finalizer %s from Cluster %s", err, fv1.LifecycleFinalizer, c.Name)
	}
	ns, _, _ := strings.Cut(c.Annotations[AnnotationCluster], "/")
	r := m.dyn.Resource(ClustersResource).Namespace(ns)
	cur, err := r.Get(ctx, c.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, m.explain(err, "reading Cluster "+ns+"/"+c.Name)
	}
	if !ours(cur, c.Name) {
		return true, nil
	}
	if cur.GetDeletionTimestamp() == nil {
		bg := metav1.DeletePropagationBackground
		uid := cur.GetUID()
		err := r.Delete(ctx, c.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, m.explain(err, "deleting Cluster "+ns+"/"+c.Name)
		}
	}
	_, err = r.Get(ctx, c.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, client.IgnoreNotFound(err)
}

// Desired is the Cluster API Cluster of a lifecycle spec: the managed
// topology of its ClusterClass, one MachineDeployment per node pool.
func Desired(name string, spec *fv1.ClusterLifecycle) *unstructured.Unstructured {
	mds := make([]any, 0, len(spec.NodePools))
	for _, np := range spec.NodePools {
		class := np.Class
		if class == "" {
			class = np.Name
		}
		mds = append(mds, map[string]any{"class": class, "name": np.Name, "replicas": int64(np.Replicas)})
	}
	cp := spec.ControlPlane.Replicas
	if cp == 0 {
		cp = 1
	}
	topology := map[string]any{
		"classRef":     map[string]any{"name": spec.ClusterAPI.Class},
		"version":      spec.Version,
		"controlPlane": map[string]any{"replicas": int64(cp)},
	}
	if len(mds) > 0 {
		topology["workers"] = map[string]any{"machineDeployments": mds}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       "Cluster",
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespaceOf(spec.ClusterAPI),
			"labels":    map[string]any{fv1.LabelCluster: name},
		},
		"spec": map[string]any{"topology": topology},
	}}
}

func namespaceOf(t *fv1.ClusterAPITopology) string {
	if t.Namespace == "" {
		return DefaultNamespace
	}
	return t.Namespace
}

// ours says whether Flotilla made this Cluster API Cluster for cluster.
func ours(u *unstructured.Unstructured, cluster string) bool {
	return u.GetLabels()[fv1.LabelCluster] == cluster
}

// connect returns the clients of the management cluster whose kubeconfig
// is in the hub Secret name.
func (p *Provider) connect(ctx context.Context, name string) (*management, error) {
	ref := p.Namespace + "/" + name
	secrets := p.Secrets
	if secrets == nil {
		secrets = p.Hub
	}
	var s corev1.Secret
	err := secrets.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("the management cluster's kubeconfig Secret %s does not exist on the hub; create it with the kubeconfig under key \"value\": kubectl -n %s create secret generic %s --from-file=value=MANAGEMENT.kubeconfig", ref, p.Namespace, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the management cluster's kubeconfig Secret %s: %w", ref, err)
	}
	kc := s.Data["value"]
	if len(kc) == 0 {
		return nil, fmt.Errorf("the Secret %s has no key \"value\": put the management cluster's kubeconfig under that key", ref)
	}
	if s.Labels[lifecycle.KubeconfigLabel] != "" {
		return nil, fmt.Errorf("the Secret %s holds the admin kubeconfig the hub publishes for cluster %s, not a management cluster's; name the management cluster's kubeconfig Secret otherwise", ref, s.Labels[lifecycle.KubeconfigLabel])
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(kc))
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.management[ref]; m != nil && m.sum == sum {
		return m, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return nil, fmt.Errorf("the Secret %s does not hold a usable kubeconfig under key \"value\": %v", ref, err)
	}
	m, err := newManagement(cfg, ref)
	if err != nil {
		return nil, err
	}
	m.sum = sum
	if p.management == nil {
		p.management = map[string]*management{}
	}
	p.management[ref] = m
	return m, nil
}

func newManagement(cfg *rest.Config, ref string) (*management, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = managementTimeout
	cfg.QPS, cfg.Burst = 20, 40
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &management{host: cfg.Host, secret: ref, dyn: dyn, core: core}, nil
}

// explain says what went wrong with a request to the management cluster
// and what to do about it.
func (m *management) explain(err error, doing string) error {
	from := ""
	if m.secret != "" {
		from = " (kubeconfig in the hub Secret " + m.secret + ")"
	}
	var uerr *url.Error
	switch {
	case errors.As(err, &uerr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the management cluster at %s%s: %v; check that it runs and that the kubeconfig's server is reachable from the hub", m.host, from, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the management cluster at %s refused the kubeconfig's credentials%s: %v; put a current kubeconfig in the Secret", m.host, from, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s on the management cluster at %s: %v; the kubeconfig%s needs rights on cluster.x-k8s.io Clusters, ClusterClasses and MachineDeployments and on Secrets", doing, m.host, err, from)
	}
	return fmt.Errorf("%s on the management cluster at %s: %w", doing, m.host, err)
}

// serves says whether the management cluster serves Cluster API's
// resource at the version Flotilla writes.
func (m *management) serves(resource string) (bool, error) {
	list, err := m.core.Discovery().ServerResourcesForGroupVersion(apiVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, m.explain(err, "discovering "+apiVersion)
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == resource }), nil
}

// notServed says Cluster API is not installed, or not at a version with
// v1beta2.
func (m *management) notServed(resource string) error {
	from := ""
	if m.secret != "" {
		from = " in the hub Secret " + m.secret
	}
	return fmt.Errorf("the management cluster at %s does not serve Cluster API's %s %s; install Cluster API v1.11 or later there (clusterctl init), or point the kubeconfig%s at a management cluster", m.host, resource, apiVersion, from)
}

// checkClass makes sure the ClusterClass exists and has a machine
// deployment class for every pool, so that a wrong name is told plainly
// rather than left for Cluster API to report.
func (m *management) checkClass(ctx context.Context, ns string, spec *fv1.ClusterLifecycle) error {
	class := spec.ClusterAPI.Class
	cc, err := m.dyn.Resource(ClusterClassesResource).Namespace(ns).Get(ctx, class, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if ok, derr := m.serves(ClusterClassesResource.Resource); derr != nil || !ok {
			if derr != nil {
				return derr
			}
			return m.notServed(ClusterClassesResource.Resource)
		}
		msg := fmt.Sprintf("the ClusterClass %s does not exist in namespace %s of the management cluster at %s", class, ns, m.host)
		list, lerr := m.dyn.Resource(ClusterClassesResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		if lerr != nil {
			return m.explain(lerr, "listing ClusterClasses in "+ns)
		}
		var names []string
		for _, it := range list.Items {
			names = append(names, it.GetName())
		}
		if len(names) == 0 {
			return fmt.Errorf("%s, which has no ClusterClass in that namespace; create the class there (your infrastructure provider's templates have one) or set spec.lifecycle.clusterAPI.namespace to where it is", msg)
		}
		return fmt.Errorf("%s; its ClusterClasses there: %s; set spec.lifecycle.clusterAPI.class to one of them", msg, strings.Join(names, ", "))
	}
	if err != nil {
		return m.explain(err, "reading ClusterClass "+ns+"/"+class)
	}
	items, _, _ := unstructured.NestedSlice(cc.Object, "spec", "workers", "machineDeployments")
	var classes []string
	for _, it := range items {
		if md, ok := it.(map[string]any); ok {
			if s, ok := md["class"].(string); ok {
				classes = append(classes, s)
			}
		}
	}
	for _, np := range spec.NodePools {
		want := np.Class
		if want == "" {
			want = np.Name
		}
		if !slices.Contains(classes, want) {
			have := "none"
			if len(classes) > 0 {
				have = strings.Join(classes, ", ")
			}
			return fmt.Errorf("node pool %s needs the machine deployment class %q, which ClusterClass %s/%s does not have (its classes: %s); set the pool's class (flotilla cluster create --capi-worker-class) or name the pool after one", np.Name, want, ns, class, have)
		}
	}
	return nil
}

// pools reads the cluster's MachineDeployments, by topology name; none
// where the management cluster serves no MachineDeployments.
func (m *management) pools(ctx context.Context, ns, cluster string) (map[string]*unstructured.Unstructured, error) {
	list, err := m.dyn.Resource(MachineDeploymentsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: clusterNameLabel + "=" + cluster})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, m.explain(err, "listing the MachineDeployments of "+ns+"/"+cluster)
	}
	out := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		if name := list.Items[i].GetLabels()[deploymentNameLabel]; name != "" {
			out[name] = &list.Items[i]
		}
	}
	return out, nil
}

// kubeconfig is the admin kubeconfig Cluster API published for cluster;
// nil before it has.
func (m *management) kubeconfig(ctx context.Context, ns, cluster string) ([]byte, error) {
	s, err := m.core.CoreV1().Secrets(ns).Get(ctx, KubeconfigSecret(cluster), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, m.explain(err, "reading Secret "+ns+"/"+KubeconfigSecret(cluster))
	}
	return s.Data["value"], nil
}

// mustInstall says whether c's agent is to be installed: never was, or was
// long enough ago that its bootstrap credential expired unused.
func (p *Provider) mustInstall(c *fv1.Cluster) bool {
	state := c.Annotations[AnnotationAgent]
	if state == "" {
		return true
	}
	if state == agentRegistered || c.Status.AgentCertificate != nil {
		return false
	}
	at, err := time.Parse(time.RFC3339, state)
	return err != nil || time.Since(at) > tokenTTL
}

// installAgent installs Flotilla's agent into the cluster of kubeconfig,
// with a bootstrap credential of c, and records that it did.
func (p *Provider) installAgent(ctx context.Context, c *fv1.Cluster, kubeconfig []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("the kubeconfig Cluster API published is not usable: %v", err)
	}
	cfg.Timeout = managementTimeout
	boot, err := p.bootstrap(ctx, c)
	if err != nil {
		return err
	}
	if err := attach.Install(ctx, cfg, attach.AgentObjects(boot, p.AgentImage), clientgoscheme.Scheme); err != nil {
		return err
	}
	return p.annotate(ctx, c, AnnotationAgent, time.Now().UTC().Format(time.RFC3339))
}

// bootstrap issues c's agent a bootstrap credential and returns its
// bootstrap kubeconfig.
func (p *Provider) bootstrap(ctx context.Context, c *fv1.Cluster) ([]byte, error) {
	return bootstrapKubeconfig(ctx, p.Hub, p.HubConfig, c)
}

func bootstrapKubeconfig(ctx context.Context, hub client.Client, hubCfg *rest.Config, c *fv1.Cluster) ([]byte, error) {
	tok, err := registration.IssueToken(ctx, hub, c.Name, tokenTTL)
	if err != nil {
		return nil, err
	}
	ca := hubCfg.CAData
	if len(ca) == 0 && hubCfg.CAFile != "" {
		if ca, err = os.ReadFile(hubCfg.CAFile); err != nil {
			return nil, err
		}
	}
	return registration.BootstrapKubeconfig(hubCfg.Host, ca, c.Name, string(c.UID), tok)
}

// annotate sets c's annotation key to value.
func (p *Provider) annotate(ctx context.Context, c *fv1.Cluster, key, value string) error {
	if c.Annotations[key] == value {
		return nil
	}
	before := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[key] = value
	return p.Hub.Patch(ctx, c, client.MergeFrom(before))
}
