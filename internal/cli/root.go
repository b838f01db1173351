// Package cli wires Flotilla's commands. It parses flags and calls the
// packages that do the work; it holds no logic of its own.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// NewRoot returns the flotilla command with every subcommand.
func NewRoot() *cobra.Command {
	// Kubernetes packages register flags (--version and others) on the global
	// flag set at init; Flotilla's commands declare their own. The upstream
	// components get the global set back.
	upstreamFlags = pflag.CommandLine
	pflag.CommandLine = pflag.NewFlagSet("flotilla", pflag.ContinueOnError)
	root := &cobra.Command{
		Use:           "flotilla",
		Short:         "Flotilla: one control plane for a fleet of Kubernetes clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		newVersionCmd(),
		newUpCmd(),
		newHubCmd(),
		newLocalClusterCmd(),
		newAgentCmd(),
		newBenchCmd(),
		newEtcdCmd(),
		newVersionsCmd(), newLocalPlaneCmd(),
		newClusterGroupCmd(), newWorkspaceCmd(), newClusterCmd(), newNamespaceCmd(), newPolicyCmd(),
		newUserCmd(), newKubeconfigCmd(), newAuditCmd(),
		newBackupCmd(), newRestoreCmd(), newScheduleCmd(), newBackupLocationCmd(),
	)
	root.AddCommand(upstreamCmds()...)
	return root
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		os.Exit(1)
	}()
	return ctx
}

// logToFile sends klog and controller-runtime logs to file, so a process's
// terminal shows only what people need. If the file cannot be opened, logs are
// dropped and the command itself reports the real problem (a bad data dir).
func logToFile(file string) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	_ = fs.Set("one_output", "true")
	var out io.Writer = io.Discard
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err == nil {
		if f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			out = f
		}
	}
	klog.SetOutput(out)
	ctrl.SetLogger(klog.NewKlogr())
}
