package hub

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/backoff"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/heartbeat/tracker"
	"flotilla.dev/flotilla/internal/pki"
)

// Keys of the hub-info ConfigMap every agent reads.
const (
	HubInfoHeartbeatURL = "heartbeatURL"
	HubInfoHeartbeatCA  = "heartbeatCA"
)

func clusterLabelExists() labels.Requirement { return labelExists(fv1.LabelCluster) }

func labelExists(key string) labels.Requirement {
	r, _ := labels.NewRequirement(key, selection.Exists, nil)
	return *r
}

// agentEndpoint prepares the heartbeat endpoint: a TLS listener whose
// certificate comes from a hub-owned CA, accepting client certificates signed
// by the apiserver's client CA (agents' registered identities). It returns the
// tracker, what agents must know to reach it, and a function that serves.
func agentEndpoint(ctx context.Context, dir *datadir.Dir, c Config, cl client.Client) (*tracker.Tracker, map[string]string, func() (func() error, error), error) {
	clientCAs, err := apiserverClientCA(ctx, cl)
	if err != nil {
		return nil, nil, nil, err
	}
	pkiDir, err := dir.Sub("pki")
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := heartbeatCA(pkiDir)
	if err != nil {
		return nil, nil, nil, err
	}
	host := c.AgentAddress
	if host == "" {
		host = "127.0.0.1"
	}
	names := []string{host, "127.0.0.1", "localhost"}
	if c.AgentAdvertise != "" {
		ahost, _, err := net.SplitHostPort(c.AgentAdvertise)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("agent advertise address %q: want host:port: %v", c.AgentAdvertise, err)
		}
		names = append(names, ahost)
	}
	pair, err := ca.Serving(pkiDir, "heartbeat", names)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	port, err := dir.Port("heartbeat", c.AgentPort)
	if err != nil {
		return nil, nil, nil, err
	}
	t := tracker.New(cl)
	info := map[string]string{
		HubInfoHeartbeatURL: "https://" + cmp.Or(c.AgentAdvertise, net.JoinHostPort(host, strconv.Itoa(port))) + heartbeat.StreamPath,
		HubInfoHeartbeatCA:  string(ca.CertPEM()),
	}
	listen := func() (func() error, error) {
		l, err := net.Listen("tcp", net.JoinHostPort(listenHost(host), strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("agent endpoint: %v", err)
		}
		return func() error { return tracker.Serve(ctx, l, t, cert, clientCAs) }, nil
	}
	return t, info, listen, nil
}

// heartbeatCA signs the agent endpoint's serving certificate; agents
// verify the endpoint with it.
func heartbeatCA(pkiDir string) (*pki.CA, error) {
	return pki.LoadOrCreateCA(pkiDir, "heartbeat-ca", "flotilla-heartbeat-ca")
}

// publishHubInfo writes where agents send heartbeats, once for all of them;
// a hub restarted with another address or CA rewrites it. Only the leader
// publishes: agents go first where it serves.
func publishHubInfo(ctx context.Context, cl client.Client, info map[string]string) error {
	return editHubInfo(ctx, cl, func(data map[string]string) bool {
		changed := false
		for k, v := range info {
			if data[k] != v {
				data[k], changed = v, true
			}
		}
		return changed
	})
}

// keepPublishing publishes hub info until it succeeds or the hub stops. A
// failure is retried, not returned: etcd electing a new leader fails writes
// for seconds, and a returned error would stop the whole hub.
func keepPublishing(ctx context.Context, cl client.Client, info map[string]string) error {
	backoff.Until(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 10 * time.Second}, func(ctx context.Context) (bool, error) {
		if err := publishHubInfo(ctx, cl, info); err != nil {
			klog.ErrorS(err, "cannot publish hub info for agents; retrying")
			return false, nil
		}
		return true, nil
	})
	return nil // published, or the hub is stopping
}

// listHub adds this hub to hub-info's list of every hub, leader or not, so
// that agents know where to go when the leader goes away.
func listHub(ctx context.Context, cl client.Client, h heartbeat.HubAddress) error {
	return editHubInfo(ctx, cl, func(data map[string]string) bool { return heartbeat.AddHub(data, h) })
}

// editHubInfo applies edit to hub-info's data, creating it if need be;
// hubs that edit it at once retry on the conflict.
func editHubInfo(ctx context.Context, cl client.Client, edit func(map[string]string) bool) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: fv1.HubInfoNamespace, Name: fv1.HubInfoConfigMap}}
		err := cl.Get(ctx, client.ObjectKeyFromObject(cm), cm)
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		exists := err == nil
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		switch {
		case !edit(cm.Data):
			return nil
		case exists:
			return cl.Update(ctx, cm)
		default:
			err := cl.Create(ctx, cm)
			if apierrors.IsAlreadyExists(err) {
				// Another hub created it meanwhile: edit theirs.
				return apierrors.NewConflict(corev1.Resource("configmaps"), cm.Name, err)
			}
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("publishing hub info for agents: %w", err)
	}
	return nil
}

// listenHost listens on all interfaces when agents are told a non-loopback address.
func listenHost(advertised string) string {
	if ip := net.ParseIP(advertised); ip != nil && ip.IsLoopback() || advertised == "localhost" {
		return advertised
	}
	return ""
}

// apiserverClientCA reads the CA the apiserver verifies client certificates
// with, which also signs approved agent CSRs.
func apiserverClientCA(ctx context.Context, cl client.Client) (*x509.CertPool, error) {
	var cm corev1.ConfigMap
	if err := cl.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "extension-apiserver-authentication"}, &cm); err != nil {
		return nil, fmt.Errorf("reading the apiserver's client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cm.Data["client-ca-file"])) {
		return nil, fmt.Errorf("the apiserver publishes no client CA; agents could not be verified")
	}
	return pool, nil
}

// agentRBAC lets bootstrap tokens and registered agents request certificates,
// and holds what an agent may do in its own hub namespace, where the Cluster
// controller binds it. They may create requests and get one by name (the
// agent polls its own), but not list or watch them: that would show every
// cluster's requests.
func agentRBAC() []client.Object {
	rule := []rbacv1.PolicyRule{{
		APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"},
		Verbs: []string{"create", "get"},
	}}
	var objs []client.Object
	for name, group := range map[string]string{"flotilla:bootstrapper": fv1.BootstrapGroup, "flotilla:agent": fv1.AgentGroup} {
		objs = append(objs,
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rule},
			&rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
			})
	}
	// Every agent reads where to send heartbeats from one ConfigMap.
	objs = append(objs,
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "flotilla:agent-hub-info", Namespace: fv1.HubInfoNamespace},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"configmaps"},
				ResourceNames: []string{fv1.HubInfoConfigMap}, Verbs: []string{"get"},
			}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "flotilla:agent-hub-info", Namespace: fv1.HubInfoNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "flotilla:agent-hub-info"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fv1.AgentGroup}},
		})
	// One role for every cluster, so the hub keeps one copy of its rules.
	return append(objs, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: fv1.AgentNamespaceRole},
		Rules: []rbacv1.PolicyRule{
			// It fetches when told of a change; it watches nothing here. It
			// writes nothing but ClusterNamespaces (no Leases: an agent holds
			// none, and each was one more object a stolen identity could add).
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
			// The agent reports the cluster's namespaces and finishes their deletion.
			{APIGroups: []string{fv1.GroupVersion.Group}, Resources: []string{"clusternamespaces", "clusternamespaces/status"}, Verbs: []string{"create", "update", "patch", "delete"}},
		},
	})
}

// ensureAgentRBAC creates the agents' RBAC, and brings what an earlier
// version created to this version's rules: what agents may do changes with
// the hub.
func ensureAgentRBAC(ctx context.Context, cl client.Client) error {
	for _, o := range agentRBAC() {
		err := cl.Create(ctx, o)
		if apierrors.IsAlreadyExists(err) {
			err = cl.Update(ctx, o) // no resourceVersion: the hub's rules win
		}
		if err != nil {
			return fmt.Errorf("writing agent RBAC %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// notifyNamespaceChanges wakes a cluster's agent whenever one of its
// ClusterNamespaces changes on the hub in a way the agent acts on, so that
// the agent fetches them then instead of watching them. What the agent
// writes itself, the namespaces it reports and their status, it already
// holds from its writes' replies: announcing those made each new cluster's
// agent list its namespaces a dozen times.
func notifyNamespaceChanges(ctx context.Context, mgr manager.Manager, changes *heartbeat.Changes) error {
	inf, err := mgr.GetCache().GetInformer(ctx, &fv1.ClusterNamespace{})
	if err != nil {
		return err
	}
	changes.DigestNamespacesWith(namespacesDigest(mgr.GetCache()))
	bump := func(o any) {
		if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if n, ok := o.(client.Object); ok {
			changes.Bump(fv1.ClusterOfHubNamespace(n.GetNamespace()), heartbeat.Namespaces)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if n, ok := o.(*fv1.ClusterNamespace); !ok || !agentReported(n) {
				bump(o)
			}
		},
		UpdateFunc: func(old, o any) {
			before, ok1 := old.(*fv1.ClusterNamespace)
			after, ok2 := o.(*fv1.ClusterNamespace)
			if !ok1 || !ok2 || agentActsOn(before, after) {
				bump(o)
			}
		},
		DeleteFunc: bump,
	})
	return err
}

// namespacesDigest digests a cluster's ClusterNamespaces as the cache
// holds them, for the tokens a restarted hub sends: agents holding the same
// need not list them again.
func namespacesDigest(cache client.Reader) func(cluster string) string {
	return func(cluster string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var l fv1.ClusterNamespaceList
		if err := cache.List(ctx, &l, client.InNamespace(fv1.HubNamespace(cluster)), client.UnsafeDisableDeepCopy); err != nil {
			return "" // the agent lists them
		}
		return heartbeat.NamespacesDigest(l.Items)
	}
}

// agentReported tells a namespace the agent found in its cluster and
// reported, which it holds from the reply to its create.
func agentReported(n *fv1.ClusterNamespace) bool {
	return n.Labels[fv1.LabelDiscovered] == "true"
}

// agentActsOn says whether a change of a ClusterNamespace is one its agent
// must act on: anything but the status, which only the agent writes.
func agentActsOn(before, after *fv1.ClusterNamespace) bool {
	return before.Spec != after.Spec ||
		!before.DeletionTimestamp.Equal(after.DeletionTimestamp) ||
		!slices.Equal(before.Finalizers, after.Finalizers) ||
		!maps.Equal(before.Labels, after.Labels)
}
