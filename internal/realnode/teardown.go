package realnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mountinfo is this process's mount table, each line split into fields
// (the mount point is field 4).
func mountinfo() ([][]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		out = append(out, strings.Fields(line))
	}
	return out, nil
}

// cgroupMount is a mounted cgroup hierarchy.
type cgroupMount struct {
	path        string
	v2          bool
	controllers []string
}

// cgroupMounts lists the mounted cgroup hierarchies.
func cgroupMounts() ([]cgroupMount, error) {
	lines, err := mountinfo()
	if err != nil {
		return nil, err
	}
	var out []cgroupMount
	for _, fields := range lines {
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		switch fields[sep+1] {
		case "cgroup2":
			out = append(out, cgroupMount{path: fields[4], v2: true})
		case "cgroup":
			out = append(out, cgroupMount{path: fields[4], controllers: strings.Split(fields[sep+3], ",")})
		}
	}
	return out, nil
}

// processRoot is the mount point of a cgroup hierarchy that places every
// process: cgroup v1's pids hierarchy where there is one (a hybrid host's
// v2 hierarchy has no controllers, and the kubelet places pods in v1's),
// or else cgroup v2's.
func processRoot() (string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	v2 := ""
	for _, m := range mounts {
		if slices.Contains(m.controllers, "pids") {
			return m.path, nil
		}
		if m.v2 && v2 == "" {
			v2 = m.path
		}
	}
	if v2 == "" {
		return "", errors.New("no cgroup hierarchy is mounted (neither cgroup2 nor cgroup v1's pids): real nodes need one")
	}
	return v2, nil
}

// makeGroups creates the cgroup rel in every hierarchy, as the kubelet
// wants its root to exist; a new cgroup v1 cpuset gets its parent's CPUs
// and memory nodes, without which nothing can join it.
func makeGroups(rel string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for _, m := range mounts {
		dir := m.path
		for _, p := range parts {
			parent := dir
			dir = filepath.Join(dir, p)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("creating cgroup %s: %w", dir, err)
			}
			if !slices.Contains(m.controllers, "cpuset") {
				continue
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if cur, _ := os.ReadFile(filepath.Join(dir, f)); strings.TrimSpace(string(cur)) != "" {
					continue
				}
				v, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("setting %s of %s: %w", f, dir, err)
				}
			}
		}
	}
	return nil
}

// JoinRuntimeGroup moves the runtime (pid) into the node's cgroup, so that
// its shims, which outlive it, are found and stopped with the node.
func (nd *Node) JoinRuntimeGroup(pid int) error {
	root, err := processRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, nd.CgroupParent(), "runtime")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// Stop kills what runs under the node's cgroup (its containers and the
// runtime's shims, once the runtime and kubelet are stopped), unmounts
// what they left under its directory, and takes it off the network. Its
// directory stays: the node starts again from it.
func (nd *Node) Stop() error {
	return errors.Join(nd.killGroup(), nd.unmountAll(), nd.netDown())
}

// killGroup kills every process in the node's cgroup tree, then removes
// the tree from every hierarchy.
func (nd *Node) killGroup() error {
	root, err := processRoot()
	if err != nil {
		return err
	}
	top := filepath.Join(root, nd.CgroupParent())
	for range 50 {
		pids := groupProcs(top)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := groupProcs(top); len(left) > 0 {
		return fmt.Errorf("processes %v of node %s do not die", left, nd.Name)
	}
	return removeGroups(nd.CgroupParent())
}

// groupProcs lists the processes in the cgroup tree at dir.
func groupProcs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeGroups removes the cgroup tree at rel from every mounted hierarchy,
// deepest first.
func removeGroups(rel string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		top := filepath.Join(m.path, rel)
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountAll unmounts every mount under the node's directory (volumes,
// container root filesystems, pod network namespaces), deepest first.
func (nd *Node) unmountAll() error {
	lines, err := mountinfo()
	if err != nil {
		return err
	}
	var under []string
	for _, f := range lines {
		if len(f) > 4 && (f[4] == nd.Dir || strings.HasPrefix(f[4], nd.Dir+"/")) {
			under = append(under, f[4])
		}
	}
	slices.SortFunc(under, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// Forget removes every real node of the cluster whose directory is owner:
// their state, and the cluster's network. The nodes must be stopped.
func Forget(owner string) error {
	n, ok, err := readNetwork(owner)
	if !ok {
		return err
	}
	return errors.Join(removeNodes(n), Release(owner))
}

// removeNodes stops and removes every node of network n on this host.
func removeNodes(n Network) error {
	dirs, _ := filepath.Glob(filepath.Join(StateRoot, strconv.Itoa(n.Index)+"-*"))
	var errs []error
	for _, d := range dirs {
		i, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), strconv.Itoa(n.Index)+"-"))
		nd := &Node{Name: filepath.Base(d), Index: i, Net: n, Dir: d}
		errs = append(errs, nd.Stop(), os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// PodPIDs lists the processes of the pod with uid on any real node of
// this host: those in its cgroup.
func PodPIDs(uid string) ([]int, error) {
	root, err := processRoot()
	if err != nil {
		return nil, err
	}
	var pids []int
	filepath.WalkDir(filepath.Join(root, "flotilla"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasSuffix(d.Name(), "pod"+uid) {
			pids = append(pids, groupProcs(p)...)
			return filepath.SkipDir
		}
		return nil
	})
	return pids, nil
}
