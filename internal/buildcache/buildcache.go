// Package buildcache keeps programs built once per machine in the user's
// cache directory: components the flotilla binary does not embed (another
// Kubernetes version's control plane, a test's S3 server), which take
// minutes to build and are then reused by every process that needs them.
package buildcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Dir is the cache directory named name, created if missing.
func Dir(name string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "flotilla", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	return dir, nil
}

// Program returns the executable file named file in the cache directory
// name, building it first with build (given the path to write) if it is
// not there. Processes that get here at once build it once: the others
// wait for the first and reuse its result. A failed build leaves nothing.
func Program(name, file string, build func(dir, out string) error) (string, error) {
	return made(name, file, IsExecutable, build)
}

// File is Program for a file that is not a program (an image archive).
func File(name, file string, build func(dir, out string) error) (string, error) {
	return made(name, file, isRegular, build)
}

func made(name, file string, done func(string) bool, build func(dir, out string) error) (string, error) {
	dir, err := Dir(name)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, file)
	if done(bin) {
		return bin, nil
	}
	unlock, err := Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	defer unlock()
	if done(bin) {
		return bin, nil
	}
	tmp := bin + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := build(dir, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	return bin, nil
}

// IsExecutable says whether p is an executable regular file.
func IsExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func isRegular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Lock takes an exclusive flock on path, waiting for other holders, and
// returns what releases it.
func Lock(path string) (unlock func(), err error) {
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
