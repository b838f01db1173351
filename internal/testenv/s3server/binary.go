package s3server

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "flotilla", "versitygw-"+version+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	// Test binaries of several packages may get here at once; one builds,
	// the others wait for it and reuse its result.
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	defer unlock()
	if isExecutable(bin) {
		return bin, nil
	}
	if logf != nil {
		logf("s3server: building versitygw %s into %s (once; takes a few minutes)", version, dir)
	}
	tmp := bin + ".tmp-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("go", "build", "-o", tmp, gwCmd).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building versitygw %s: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	return bin, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// lock takes an exclusive flock on path, waiting for other holders.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
