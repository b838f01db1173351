package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// The agent builds its clients from client-go's low-level pieces: its
// clientset, informer factories, discovery and controller-runtime each link
// every API group's types and clients, which doubled the agent's memory.
// Hub objects are typed, through clients of a scheme that knows only the
// kinds the agent uses; member cluster objects go through the dynamic client,
// which the fleet benchmark fakes.

// typedKinds knows the kinds the agent reads or writes typed, and no others;
// it is built once per process.
var typedKinds = sync.OnceValue(func() kinds {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, certificatesv1.AddToScheme, fv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return kinds{codecs: serializer.NewCodecFactory(s), params: runtime.NewParameterCodec(s)}
})

type kinds struct {
	codecs serializer.CodecFactory
	params runtime.ParameterCodec // encodes request options
}

// restClientFor reaches gv's objects at cfg, set up as client-go's generated
// clients set theirs up.
func restClientFor(cfg *rest.Config, gv schema.GroupVersion) (*rest.RESTClient, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	if gv.Group == "" {
		cfg.APIPath = "/api"
	}
	cfg.NegotiatedSerializer = typedKinds().codecs.WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(cfg)
}

// typedClient reads and writes one kind, as client-go's generated clients
// do; gentype, which they are built on, would link client-go's fakes.
type typedClient[T object] struct {
	rest      rest.Interface
	resource  string
	namespace string // empty for cluster-scoped kinds
	protobuf  bool   // built-in kinds are read as protobuf, as client-go reads them
}

type object interface {
	runtime.Object
	metav1.Object
}

func (c typedClient[T]) request(r *rest.Request) *rest.Request {
	return r.UseProtobufAsDefaultIfPreferred(c.protobuf).NamespaceIfScoped(c.namespace, c.namespace != "").Resource(c.resource)
}

// into decodes the object r answers with.
func (c typedClient[T]) into(ctx context.Context, r *rest.Request) (T, error) {
	out := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T) // T is a pointer
	return out, r.Do(ctx).Into(out)
}

func (c typedClient[T]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	return c.into(ctx, c.request(c.rest.Get()).Name(name).VersionedParams(&opts, typedKinds().params))
}

// List lists every object into list, of T's list kind.
func (c typedClient[T]) List(ctx context.Context, list runtime.Object) error {
	return c.request(c.rest.Get()).Do(ctx).Into(list)
}

func (c typedClient[T]) Create(ctx context.Context, obj T) (T, error) {
	return c.into(ctx, c.request(c.rest.Post()).Body(obj))
}

func (c typedClient[T]) Update(ctx context.Context, obj T) (T, error) {
	return c.into(ctx, c.request(c.rest.Put()).Name(obj.GetName()).Body(obj))
}

func (c typedClient[T]) Delete(ctx context.Context, name string) error {
	return c.request(c.rest.Delete()).Name(name).Do(ctx).Error()
}

// Patch applies a merge patch to the object or to one of its subresources.
func (c typedClient[T]) Patch(ctx context.Context, name string, patch []byte, subresources ...string) (T, error) {
	return c.into(ctx, c.request(c.rest.Patch(types.MergePatchType)).Name(name).SubResource(subresources...).Body(patch))
}

// hubClient reaches what the agent reads and writes on the hub: its
// cluster's hub namespace, and the hub info every agent reads. Its Cluster's
// status it writes through its stream.
type hubClient struct {
	hubInfo           typedClient[*corev1.ConfigMap]
	clusterNamespaces typedClient[*fv1.ClusterNamespace]
}

func newHubClient(cfg *rest.Config, cluster string) (*hubClient, error) {
	core, err := restClientFor(cfg, corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	flotilla, err := restClientFor(cfg, fv1.GroupVersion)
	if err != nil {
		return nil, err
	}
	ns := fv1.HubNamespace(cluster)
	return &hubClient{
		hubInfo:           typedClient[*corev1.ConfigMap]{rest: core, resource: "configmaps", namespace: fv1.HubInfoNamespace, protobuf: true},
		clusterNamespaces: typedClient[*fv1.ClusterNamespace]{rest: flotilla, resource: "clusternamespaces", namespace: ns},
	}, nil
}

// csrClient submits and reads certificate signing requests.
func csrClient(cfg *rest.Config) (typedClient[*certificatesv1.CertificateSigningRequest], error) {
	rc, err := restClientFor(cfg, certificatesv1.SchemeGroupVersion)
	return typedClient[*certificatesv1.CertificateSigningRequest]{rest: rc, resource: "certificatesigningrequests", protobuf: true}, err
}

// The core kinds the agent reads or writes in its cluster.
var (
	nodesResource      = corev1.SchemeGroupVersion.WithResource("nodes")
	namespacesResource = corev1.SchemeGroupVersion.WithResource("namespaces")
	podsResource       = corev1.SchemeGroupVersion.WithResource("pods")
	secretsResource    = corev1.SchemeGroupVersion.WithResource("secrets")
)

// as converts an object read through the dynamic client to its type; one
// converted already passes through.
func as[T any](obj any) (*T, error) {
	if t, ok := obj.(*T); ok {
		return t, nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("want an unstructured %T, got %T", new(T), obj)
	}
	t := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
		return nil, err
	}
	return t, nil
}

// unstructuredOf converts a typed object, its kind set, for the dynamic client.
func unstructuredOf(obj runtime.Object) (*unstructured.Unstructured, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: u}, nil
}

// typed is a transform that keeps an informer's objects as T.
func typed[T any](obj any) (any, error) {
	t, err := as[T](obj)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// lister lists and watches one resource: a dynamic or a metadata client's.
type lister[L runtime.Object] interface {
	List(context.Context, metav1.ListOptions) (L, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// informerOf watches what ri lists with selector (may be empty); example is
// the type of what it lists. It is what dynamicinformer and metadatainformer
// build, without linking client-go's typed informers. client tells the
// reflector whether it can stream a list as watch events: client-go's fakes
// cannot, and an informer that waits for that stream never syncs.
func informerOf[L runtime.Object](client any, gvr schema.GroupVersionResource, ri lister[L], example runtime.Object, selector string) toolscache.SharedIndexInformer {
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return ri.Watch(ctx, o)
		},
	}
	return toolscache.NewSharedIndexInformerWithOptions(toolscache.ToListWatcherWithWatchListSemantics(lw, client), example,
		toolscache.SharedIndexInformerOptions{ObjectDescription: gvr.String()})
}

// serverVersion asks the cluster's apiserver for its version, as discovery does.
func serverVersion(ctx context.Context, server rest.Interface) (*version.Info, error) {
	body, err := server.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("unable to parse the server version: %v", err)
	}
	return &info, nil
}

// serverResources lists the resources the cluster serves for gv, as discovery does.
func serverResources(ctx context.Context, server rest.Interface, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
	path := "/apis/" + gv.String()
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	body, err := server.Get().AbsPath(path).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	return &list, nil
}
