package s3server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"flotilla.dev/flotilla/internal/buildcache"
)

const (
	gwModule = "github.com/versity/versitygw"
	gwCmd    = gwModule + "/cmd/versitygw"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the versitygw binary: $FLOTILLA_VERSITYGW_BIN if set, else
// one built from the version in go.mod, once per version and machine. logf
// (may be nil) hears when a build starts, as the first one is slow.
func Binary(logf func(format string, args ...any)) (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("FLOTILLA_VERSITYGW_BIN"); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		binPath, binErr = cachedBuild(logf)
	})
	return binPath, binErr
}

func cachedBuild(logf func(format string, args ...any)) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", gwModule).CombinedOutput()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		return "", fmt.Errorf("finding the versitygw version in go.mod: %v: %s: run go get -tool %s@v1.8.0", err, out, gwCmd)
	}
	name := "versitygw-" + version + "-" + runtime.GOOS + "-" + runtime.GOARCH
	return buildcache.Program(name, "versitygw", func(dir, tmp string) error {
		if logf != nil {
			logf("s3server: building versitygw %s into %s (once; takes a few minutes)", version, dir)
		}
		if out, err := exec.Command("go", "build", "-o", tmp, gwCmd).CombinedOutput(); err != nil {
			return fmt.Errorf("building versitygw %s: %v\n%s", version, err, out)
		}
		return nil
	})
}
