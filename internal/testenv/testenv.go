// Package testenv starts real Flotilla processes for tests: a hub and local
// clusters, each a child process of the flotilla binary on free ports, with
// clients for each. Everything is stopped by PID on Stop, and children die
// with the test process if it crashes.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
)

// Options say what to start.
type Options struct {
	// Clusters is the number of local clusters.
	Clusters int
	// Nodes per local cluster; default 2.
	Nodes int
	// NoHub skips the hub.
	NoHub bool
	// HubArgs are added to the hub's command line.
	HubArgs []string
}

// Env is a running set of processes.
type Env struct {
	// Dir holds every process's data dir; removed on Stop.
	Dir      string
	Hub      *Process
	Clusters []*Process
}

// Process is one running hub or local cluster.
type Process struct {
	Name string
	// Args are the flotilla arguments it was started with.
	Args []string
	// Dir is its data dir.
	Dir string
	// Kubeconfig is the admin kubeconfig it wrote.
	Kubeconfig string
	Config     *rest.Config
	Clientset  kubernetes.Interface
	Client     client.Client
	proc       *procs.Proc
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the flotilla binary under test: $FLOTILLA_BIN if set, else
// one built once per test process.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("FLOTILLA_BIN"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		// One build per test process, in a dir named after its PID; dirs of
		// test processes that have ended are removed, so runs leave no trash.
		removeStaleBinaries()
		dir := filepath.Join(os.TempDir(), "flotilla-bin-"+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flotilla")
		out, err := exec.Command("go", "build", "-o", binPath, "flotilla.dev/flotilla/cmd/flotilla").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building flotilla: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

func removeStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "flotilla-bin-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "flotilla-bin-"))
		if err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// Start starts a hub and opts.Clusters local clusters in parallel and waits
// until all are ready.
func Start(opts Options) (*Env, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	dir, err := os.MkdirTemp("", "flotilla-test-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	var all []*Process
	if !opts.NoHub {
		e.Hub = &Process{Name: "hub", Dir: filepath.Join(dir, "hub")}
		e.Hub.Args = append([]string{"hub", "--data-dir", e.Hub.Dir}, opts.HubArgs...)
		e.Hub.Kubeconfig = filepath.Join(e.Hub.Dir, "admin.kubeconfig")
		all = append(all, e.Hub)
	}
	for i := 1; i <= opts.Clusters; i++ {
		name := "cluster-" + strconv.Itoa(i)
		e.Clusters = append(e.Clusters, NewCluster(filepath.Join(dir, name), name, opts.Nodes))
	}
	all = append(all, e.Clusters...)
	for _, p := range all {
		if err := p.Start(); err != nil {
			e.Stop()
			return nil, err
		}
	}
	for _, p := range all {
		if err := p.Wait(); err != nil {
			e.Stop()
			return nil, err
		}
	}
	return e, nil
}

// New starts an Env for one test and stops it when the test ends.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	e, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

// Stop stops every process by PID and removes the data dirs.
func (e *Env) Stop() {
	var wg sync.WaitGroup
	for _, p := range append([]*Process{e.Hub}, e.Clusters...) {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	os.RemoveAll(e.Dir)
}

// NewCluster describes a local cluster in dir; Start runs it.
func NewCluster(dir, name string, nodes int) *Process {
	return &Process{
		Name:       name,
		Dir:        dir,
		Args:       []string{"localcluster", "--name", name, "--data-dir", dir, "--nodes", strconv.Itoa(nodes)},
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
	}
}

// NewProcess describes any flotilla command that marks dir ready; Start runs it.
func NewProcess(name, dir, kubeconfigPath string, args ...string) *Process {
	return &Process{Name: name, Dir: dir, Args: args, Kubeconfig: kubeconfigPath}
}

// Start starts the process without waiting.
func (p *Process) Start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	p.proc, err = procs.Start(p.Name, bin, p.Args, p.Dir+".log")
	return err
}

// Wait waits until the process is ready and builds its clients.
func (p *Process) Wait() error {
	if err := p.proc.WaitReady(p.Dir, 2*time.Minute); err != nil {
		log, _ := os.ReadFile(p.Dir + ".log")
		return fmt.Errorf("%v\n%s", err, tail(log, 2000))
	}
	if p.Kubeconfig == "" {
		return nil // a process without an API of its own, such as an agent
	}
	cfg, err := kubeconfig.Load(p.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	p.Config = cfg
	if p.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	p.Client, err = client.New(cfg, client.Options{Scheme: hub.Scheme()})
	return err
}

// Run starts the process and waits until it is ready.
func (p *Process) Run() error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.Wait()
}

// PID of the running process.
func (p *Process) PID() int { return p.proc.PID() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.proc.Done() }

// Stop stops the process (SIGTERM, then SIGKILL after 15 s).
func (p *Process) Stop() {
	if p.proc != nil {
		p.proc.Stop(15 * time.Second)
	}
}

// Kill kills the process at once, as a crash would.
func (p *Process) Kill() {
	if p.proc != nil {
		p.proc.Signal(os.Kill)
		<-p.proc.Done()
	}
}

// Log returns what the process printed.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.Dir + ".log")
	return string(b)
}

// LogTail returns the last n bytes the process printed.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.Dir + ".log")
	return tail(b, n)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func init() {
	// Clients built here log through controller-runtime; tests read state, not logs.
	ctrllog.SetLogger(logr.Discard())
}

// AgentCSRs counts the certificate requests cluster's agent made of the
// hub (each registration or rotation is one).
func (p *Process) AgentCSRs(ctx context.Context, cluster string) (int, error) {
	var list certificatesv1.CertificateSigningRequestList
	if err := p.Client.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range list.Items {
		if strings.HasPrefix(c.Name, "flotilla-agent-"+cluster+"-") {
			n++
		}
	}
	return n, nil
}
