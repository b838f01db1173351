package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"flotilla.dev/flotilla/internal/hub"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

// hubKubeconfigEnv overrides the default of --hub-kubeconfig.
const hubKubeconfigEnv = "FLOTILLA_HUB_KUBECONFIG"

// hubTimeout bounds each request, so a hub that is down or unroutable fails
// the command promptly instead of hanging.
const hubTimeout = 10 * time.Second

// hubOptions are the flags of commands that talk to the hub.
type hubOptions struct {
	kubeconfig string
}

// addFlags registers --hub-kubeconfig; its default is the file `flotilla up`
// writes, unless FLOTILLA_HUB_KUBECONFIG names another.
func (o *hubOptions) addFlags(fs *pflag.FlagSet) {
	def := ".flotilla/hub/admin.kubeconfig"
	if env := os.Getenv(hubKubeconfigEnv); env != "" {
		def = env
	}
	fs.StringVar(&o.kubeconfig, "hub-kubeconfig", def, "kubeconfig of the hub (env "+hubKubeconfigEnv+")")
}

// run calls fn with a client of the hub and turns transport failures into
// one line that says whether the hub is reachable at all.
func (o *hubOptions) run(fn func(ctx context.Context, c client.Client) error) error {
	cfg, err := kubeconfig.Load(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("%v; run 'flotilla up' or pass --hub-kubeconfig", err)
	}
	cfg.Timeout = hubTimeout
	// Print apiserver warnings plainly; the default goes through a logger
	// nothing in a CLI run has set up.
	cfg.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.New(cfg, client.Options{Scheme: hub.Scheme()})
	if err != nil {
		return err
	}
	return hubError(fn(signalContext(), c), cfg.Host, o.kubeconfig)
}

// hubError explains errors that come from not reaching the hub's API rather
// than from the API itself.
func hubError(err error, host, path string) error {
	var uerr *url.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &uerr):
		return fmt.Errorf("cannot reach the hub at %s: %v; is it running?", host, uerr.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the hub at %s: no answer within %s; is it running?", host, hubTimeout)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%s does not serve Flotilla's API (flotilla.dev); is %s a hub's kubeconfig?", host, path)
	}
	return err
}
