package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/clusterproxy"
	"flotilla.dev/flotilla/internal/datadir"
	"flotilla.dev/flotilla/internal/pki"
	"flotilla.dev/flotilla/internal/tunnel"
)

// The hub's apiserver reaches the access point through this Service, an
// ExternalName for the loopback address: the access point runs in the hub's
// own process.
const (
	accessPointService = "flotilla-access-point"
	frontProxyUser     = "front-proxy-client"
)

// apiserverAccessArgs are the apiserver flags of who may reach what:
// the access point's, the audit log's and the authentication config's.
func apiserverAccessArgs(dir *datadir.Dir, pkiDir string, c Config) ([]string, error) {
	args, err := accessPointArgs(pkiDir)
	if err != nil {
		return nil, err
	}
	size := c.AuditLogMaxSize
	if size == 0 {
		size = 100
	}
	audit, err := auditArgs(dir, size)
	if err != nil {
		return nil, err
	}
	args = append(args, audit...)
	if c.AuthenticationConfig != "" {
		if _, err := os.Stat(c.AuthenticationConfig); err != nil {
			return nil, fmt.Errorf("--authentication-config: %v", err)
		}
		args = append(args, "--authentication-config="+c.AuthenticationConfig)
	}
	return args, nil
}

// accessPointArgs are the apiserver flags the access point needs: the
// front-proxy client certificate it proxies with, and the request-header
// authentication the access point reads the user from. Only the hub holds
// the front-proxy CA's key, and it issues only that one certificate.
func accessPointArgs(pkiDir string) ([]string, error) {
	ca, err := pki.LoadOrCreateCA(pkiDir, "front-proxy-ca", "flotilla-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	client, err := ca.Client(pkiDir, "front-proxy-client", frontProxyUser)
	if err != nil {
		return nil, err
	}
	return []string{
		"--requestheader-client-ca-file=" + ca.CertFile,
		"--requestheader-allowed-names=" + frontProxyUser,
		"--requestheader-username-headers=" + clusterproxy.UserHeader,
		"--requestheader-group-headers=" + clusterproxy.GroupHeader,
		"--requestheader-extra-headers-prefix=" + clusterproxy.ExtraHeaderPrefix,
		"--proxy-client-cert-file=" + client.CertFile,
		"--proxy-client-key-file=" + client.KeyFile,
	}, nil
}

// accessPoint prepares the access point: a loopback TLS listener the hub's
// apiserver proxies proxy.flotilla.dev requests to, and the APIService and
// Service that make it do so (written by register, on the leader only: the
// leader's tracker holds the agents' streams, and so their tunnels).
func accessPoint(ctx context.Context, dir *datadir.Dir, cl client.Client, tunnels *tunnel.Hub) (serve func() error, register func(context.Context) error, err error) {
	pkiDir, err := dir.Sub("pki")
	if err != nil {
		return nil, nil, err
	}
	frontCA, err := pki.LoadOrCreateCA(pkiDir, "front-proxy-ca", "flotilla-front-proxy-ca")
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(frontCA.Cert)
	ca, err := pki.LoadOrCreateCA(pkiDir, "heartbeat-ca", "flotilla-heartbeat-ca")
	if err != nil {
		return nil, nil, err
	}
	// The apiserver checks the name of the Service, as it does for any
	// aggregated API.
	pair, err := ca.Serving(pkiDir, "access-point", []string{accessPointService + "." + SystemNamespace + ".svc", "127.0.0.1"})
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	port, err := dir.Port("access-point", 0)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, nil, fmt.Errorf("access point: %v", err)
	}
	h := &clusterproxy.Handler{Tunnels: tunnels, Clusters: cl}
	serve = func() error { return clusterproxy.Serve(ctx, l, h, cert, pool, []string{frontProxyUser}) }
	register = func(ctx context.Context) error { return registerAccessPoint(ctx, cl, int32(port), ca.CertPEM()) }
	return serve, register, nil
}

// registerAccessPoint writes the Service and APIService that send
// proxy.flotilla.dev to the access point on port.
func registerAccessPoint(ctx context.Context, cl client.Client, port int32, caBundle []byte) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: SystemNamespace, Name: accessPointService},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
	}
	api := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: fv1.ProxyVersion + "." + fv1.ProxyGroup},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                fv1.ProxyGroup,
			Version:              fv1.ProxyVersion,
			Service:              &apiregistrationv1.ServiceReference{Namespace: SystemNamespace, Name: accessPointService, Port: &port},
			CABundle:             caBundle,
			GroupPriorityMinimum: 1000,
			VersionPriority:      15,
		},
	}
	for _, o := range []client.Object{svc, api} {
		if err := createOrUpdate(ctx, cl, o); err != nil {
			return fmt.Errorf("registering the access point: %w", err)
		}
	}
	klog.InfoS("access point registered", "apiService", api.Name, "port", port)
	<-ctx.Done()
	return nil
}

// createOrUpdate writes o's spec, creating o if absent.
func createOrUpdate(ctx context.Context, cl client.Client, o client.Object) error {
	err := cl.Create(ctx, o)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := o.DeepCopyObject().(client.Object)
	if err := cl.Get(ctx, client.ObjectKeyFromObject(o), cur); err != nil {
		return err
	}
	o.SetResourceVersion(cur.GetResourceVersion())
	return cl.Update(ctx, o)
}

// auditArgs are the apiserver flags of the hub's audit log: every request
// through the access point, and every change to Flotilla's objects, by
// size-rotated files under logs/. The policy is a file in the data dir,
// written once: edit it to log more or less, and restart the hub.
func auditArgs(dir *datadir.Dir, maxSizeMB int) ([]string, error) {
	policy := dir.Join("audit-policy.yaml")
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte(defaultAuditPolicy), 0o644); err != nil {
			return nil, err
		}
	}
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + dir.Join("logs", "audit.log"),
		"--audit-log-format=json",
		"--audit-log-maxsize=" + strconv.Itoa(maxSizeMB),
		"--audit-log-maxbackup=10",
	}, nil
}

// defaultAuditPolicy logs who reached which cluster, and who changed what
// Flotilla governs; not agents' and controllers' own traffic, which at
// thousands of clusters would be most of the log.
const defaultAuditPolicy = `# The hub's audit policy (audit.k8s.io/v1). Written once by the hub; edit it
# and restart the hub to change what is logged. 'flotilla audit' reads the log.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# Every request through the access point to a cluster.
- level: Metadata
  resources:
  - group: proxy.flotilla.dev
    resources: [clusters/proxy]
# Changes to what Flotilla governs, and to who may reach what.
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
  resources:
  - group: flotilla.dev
    resources: [policies, clustergroups, workspaces, clusters]
  - group: rbac.authorization.k8s.io
- level: None
`
