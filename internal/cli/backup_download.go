package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"flotilla.dev/flotilla/internal/backup/download"
	"flotilla.dev/flotilla/internal/kubeconfig"
)

func newBackupDownloadCmd(o *hubOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download NAME [-o FILE]",
		Short: "Download a backup's archive (Velero's format) through the hub, checking its checksum",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if out == "" {
				out = name + ".tar.gz"
			}
			return o.run(func(ctx context.Context, _ client.Client) error {
				n, err := downloadArchive(ctx, o.kubeconfig, name, out)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "backup %s: %d bytes written to %s, checksum verified\n", name, n, out)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default NAME.tar.gz; - for stdout)")
	return cmd
}

// downloadArchive streams backup name's archive from the hub into path,
// and removes what it wrote unless the archive hashes to the checksum the
// backup recorded.
func downloadArchive(ctx context.Context, kc, name, path string) (int64, error) {
	cfg, err := kubeconfig.Load(kc)
	if err != nil {
		return 0, err
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+download.Path(name), nil)
	if err != nil {
		return 0, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s", strings.TrimSpace(string(msg)))
	}
	w := io.Writer(os.Stdout)
	if path != "-" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		w = f
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	want := resp.Header.Get(download.ChecksumHeader)
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err == nil && want != "" && got != want {
		err = fmt.Errorf("the archive's checksum is %s, the backup recorded %s: it is corrupt", got, want)
	}
	if err != nil && path != "-" {
		os.Remove(path)
	}
	return n, err
}
