// Package kubeapi runs a real kube-apiserver inside the current process, with
// its own CA, TLS serving certificate, client-certificate authentication, RBAC
// and an admin kubeconfig. Only one apiserver may run per process: it shares
// the process-wide feature gates, metrics registry and klog settings.
package kubeapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"flotilla.dev/flotilla/internal/pki"
)

// Config describes one apiserver.
type Config struct {
	// PKIDir keeps the CA, serving and client certificates across restarts.
	PKIDir string
	// Port is the secure port served on Address.
	Port int
	// Address is the one address the apiserver serves on, advertises and
	// its URL names; default 127.0.0.1. A cluster with real nodes serves on its node
	// network's gateway, which its nodes and pods reach.
	Address string
	// EtcdServers are the etcd client URLs.
	EtcdServers []string
	// EtcdPrefix separates this apiserver's keys in a shared etcd.
	EtcdPrefix string
	// ServiceCIDR is the service cluster IP range.
	ServiceCIDR string
	// Authorization is the --authorization-mode value.
	Authorization string
	// DisableAdmission lists admission plugins to turn off.
	DisableAdmission []string
	// WatchCache keeps a watch cache per resource; faster lists, more memory.
	WatchCache bool
	// StartedPath is the path Start waits for: /readyz (default), or an
	// earlier one (/version: serving at all) for callers that overlap their
	// own setup with the rest of readiness and call WaitReady.
	StartedPath string
	// ExtraArgs are appended to the generated kube-apiserver flags.
	ExtraArgs []string
	// Admission are admission plugins of our own, registered and run after
	// the built-in ones.
	Admission []AdmissionPlugin
	// Handlers serve paths under their prefixes (ending in /) behind the
	// apiserver's own authentication, impersonation, authorization and
	// audit: the user is in the request's context.
	Handlers map[string]http.Handler
}

// AdmissionPlugin is an admission plugin compiled into the apiserver.
type AdmissionPlugin struct {
	Name     string
	Register func(*admission.Plugins)
}

// Server is a running apiserver.
type Server struct {
	// URL is the https address of the apiserver.
	URL string
	// CA signs the serving certificate and every client certificate the
	// apiserver accepts.
	CA *pki.CA
	// Admin is a client config with cluster-admin rights (group system:masters).
	Admin *rest.Config
	// Bin runs the controller manager and scheduler (BIN
	// kube-controller-manager FLAGS); empty for this binary.
	Bin    string
	err    chan error
	stop   context.CancelFunc
	pkiDir string
}

// Err delivers the error that stopped the apiserver, or nil after a clean stop.
func (s *Server) Err() <-chan error { return s.err }

// Stop stops the apiserver and waits for it at most timeout: it lets
// in-flight requests finish, but long watches do not hold up the process.
func (s *Server) Stop(timeout time.Duration) {
	s.stop()
	select {
	case <-s.err:
	case <-time.After(timeout):
	}
}

// CreatePKI creates in dir the CA and the service-account key a Server
// started on dir uses, unless they exist.
func CreatePKI(dir string) error {
	if _, err := loadOrCreateCA(dir); err != nil {
		return err
	}
	_, err := pki.ServiceAccountKey(dir)
	return err
}

func loadOrCreateCA(dir string) (*pki.CA, error) {
	return pki.LoadOrCreateCA(dir, "ca", "flotilla-ca")
}

// Prepare creates (or reuses) c's PKI in c.PKIDir and returns the Server
// that c describes, not started, with the kube-apiserver flags that start
// it: in this process (Start), or as a process of a kube-apiserver binary
// of any supported version.
func Prepare(c Config) (*Server, []string, error) {
	ca, err := loadOrCreateCA(c.PKIDir)
	if err != nil {
		return nil, nil, err
	}
	addr := orDefault(c.Address, "127.0.0.1")
	serviceCIDR := orDefault(c.ServiceCIDR, "10.96.0.0/16")
	hosts := []string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	if addr != "127.0.0.1" {
		hosts = append(hosts, addr)
	}
	// Pods reach the apiserver at the first address of the service range.
	if prefix, err := netip.ParsePrefix(serviceCIDR); err == nil {
		hosts = append(hosts, prefix.Addr().Next().String())
	}
	serving, err := ca.Serving(c.PKIDir, "apiserver", hosts)
	if err != nil {
		return nil, nil, err
	}
	admin, err := ca.Client(c.PKIDir, "admin", "flotilla-admin", "system:masters")
	if err != nil {
		return nil, nil, err
	}
	sa, err := pki.ServiceAccountKey(c.PKIDir)
	if err != nil {
		return nil, nil, err
	}
	args := []string{
		"--bind-address=" + addr,
		"--advertise-address=" + addr,
		"--secure-port=" + strconv.Itoa(c.Port),
		"--tls-cert-file=" + serving.CertFile,
		"--tls-private-key-file=" + serving.KeyFile,
		"--client-ca-file=" + ca.CertFile,
		"--etcd-servers=" + strings.Join(c.EtcdServers, ","),
		"--etcd-prefix=" + orDefault(c.EtcdPrefix, "/registry"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + sa.CertFile,
		"--service-account-signing-key-file=" + sa.KeyFile,
		"--authorization-mode=" + orDefault(c.Authorization, "RBAC"),
		"--allow-privileged=true",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
		"--watch-cache=" + strconv.FormatBool(c.WatchCache),
		"--shutdown-delay-duration=0s",
		"--endpoint-reconciler-type=none",
	}
	if len(c.DisableAdmission) > 0 {
		args = append(args, "--disable-admission-plugins="+strings.Join(c.DisableAdmission, ","))
	}
	args = append(args, c.ExtraArgs...)
	srv := &Server{
		URL:    "https://" + net.JoinHostPort(addr, strconv.Itoa(c.Port)),
		CA:     ca,
		err:    make(chan error, 1),
		pkiDir: c.PKIDir,
	}
	srv.Admin = &rest.Config{
		Host:            srv.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM(), CertFile: admin.CertFile, KeyFile: admin.KeyFile},
		QPS:             200,
		Burst:           400,
	}
	return srv, args, nil
}

// Start starts the apiserver and waits until StartedPath passes; ctx bounds
// only the wait. The apiserver runs until Stop.
func Start(ctx context.Context, c Config) (*Server, error) {
	srv, args, err := Prepare(c)
	if err != nil {
		return nil, err
	}
	s := options.NewServerRunOptions()
	for _, p := range c.Admission {
		p.Register(s.Admission.GenericAdmission.Plugins)
		s.Admission.GenericAdmission.RecommendedPluginOrder = append(s.Admission.GenericAdmission.RecommendedPluginOrder, p.Name)
	}
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, utilerrors.NewAggregate(errs)
	}

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	srv.stop = stop
	go func() { srv.err <- run(runCtx, completed, c.Handlers) }()

	if err := srv.wait(ctx, c.StartedPath); err != nil {
		srv.Stop(5 * time.Second)
		return nil, err
	}
	return srv, nil
}

// run runs the apiserver as kube-apiserver's own Run does, with handlers
// added to its chain.
func run(ctx context.Context, opts options.CompletedOptions, handlers map[string]http.Handler) error {
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		opts.InformerName = name
	}
	config, err := app.NewConfig(opts)
	if err != nil {
		return err
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := app.CreateServerChain(completed)
	if err != nil {
		return err
	}
	for prefix, h := range handlers {
		server.GenericAPIServer.Handler.NonGoRestfulMux.UnlistedHandlePrefix(prefix, h)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// WaitReady waits until /readyz passes.
func (s *Server) WaitReady(ctx context.Context) error { return s.wait(ctx, "/readyz") }

// wait polls path until it passes, the server fails, or a minute passes.
func (s *Server) wait(ctx context.Context, path string) error {
	if path == "" {
		path = "/readyz"
	}
	cfg := rest.CopyConfig(s.Admin)
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.After(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case err := <-s.err:
			s.err <- err
			return fmt.Errorf("kube-apiserver stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("kube-apiserver %s failing after 1m: %v", path, last)
		case <-tick.C:
			_, last = cs.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
			if last == nil {
				return nil
			}
		}
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
