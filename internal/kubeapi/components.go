package kubeapi

import (
	"path/filepath"
	"strings"

	"flotilla.dev/flotilla/internal/kubeconfig"
	"flotilla.dev/flotilla/internal/procs"
)

// lowMemoryGC makes the controller processes collect garbage more often: they
// are idle most of the time, and memory is what limits how many control
// planes fit on one machine.
const lowMemoryGC = "GOGC=30"

// WriteKubeconfig issues a client certificate for component (admin, or a
// system component such as kube-scheduler) and writes a kubeconfig for it.
func (s *Server) WriteKubeconfig(path, name, component string) error {
	user, groups := "system:"+component, []string(nil)
	if component == "admin" {
		user, groups = "flotilla-admin", []string{"system:masters"}
	}
	pair, err := s.CA.Client(s.pkiDir, component, user, groups...)
	if err != nil {
		return err
	}
	return kubeconfig.Write(path, name, s.URL, s.CA.CertPEM(), pair.CertFile, pair.KeyFile)
}

// bin is the binary that runs the components: Bin, or this one.
func (s *Server) bin() (string, error) {
	if s.Bin != "" {
		return s.Bin, nil
	}
	return procs.Self()
}

// StartControllerManager runs kube-controller-manager with controllers as a
// child process of the components' binary, with extra flags after its own. It signs
// kube-apiserver-client certificates with the apiserver's CA.
func (s *Server) StartControllerManager(name, logFile string, controllers []string, extra ...string) (*procs.Proc, error) {
	kc := filepath.Join(s.pkiDir, "kube-controller-manager.kubeconfig")
	if err := s.WriteKubeconfig(kc, name, "kube-controller-manager"); err != nil {
		return nil, err
	}
	bin, err := s.bin()
	if err != nil {
		return nil, err
	}
	return procs.Start("kube-controller-manager", bin, append([]string{
		"kube-controller-manager",
		"--kubeconfig=" + kc,
		"--controllers=" + strings.Join(controllers, ","),
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + filepath.Join(s.pkiDir, "sa.key"),
		"--root-ca-file=" + s.CA.CertFile,
		"--cluster-signing-cert-file=" + s.CA.CertFile,
		"--cluster-signing-key-file=" + s.CA.KeyFile,
		"--cluster-name=" + name,
		"--concurrent-gc-syncs=5",
	}, extra...), logFile, lowMemoryGC)
}

// StartScheduler runs kube-scheduler as a child process of the components'
// binary.
func (s *Server) StartScheduler(name, logFile string) (*procs.Proc, error) {
	kc := filepath.Join(s.pkiDir, "kube-scheduler.kubeconfig")
	if err := s.WriteKubeconfig(kc, name, "kube-scheduler"); err != nil {
		return nil, err
	}
	bin, err := s.bin()
	if err != nil {
		return nil, err
	}
	return procs.Start("kube-scheduler", bin, []string{
		"kube-scheduler",
		"--kubeconfig=" + kc,
		"--secure-port=0",
		"--leader-elect=false",
	}, logFile, lowMemoryGC)
}
