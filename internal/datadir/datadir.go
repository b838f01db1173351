// Package datadir manages the directory a Flotilla process keeps its state in:
// an exclusive lock so two processes never share it, the ports it serves on
// (kept so kubeconfigs stay valid across restarts), and a ready marker that
// parent processes and tests wait for.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is an open, locked data directory.
type Dir struct {
	Path string
	lock *os.File
}

// Open creates path if needed, checks that it is writable and locks it.
func Open(path string) (*Dir, error) {
	return open(path, true)
}

// OpenUnlocked is Open without the lock, for the directories of simulated
// agents one process runs by the thousand: a lock holds a file open, and
// 10,000 of them beside as many streams exceed the process's file limit.
func OpenUnlocked(path string) (*Dir, error) {
	return open(path, false)
}

func open(path string, lock bool) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s cannot be created: %v; choose another with --data-dir", abs, unwrapPath(err))
	}
	probe, err := os.CreateTemp(abs, ".probe-")
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %v; choose another with --data-dir", abs, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	if !lock {
		return &Dir{Path: abs}, nil
	}

	f, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := os.ReadFile(filepath.Join(abs, "lock"))
		holder := ""
		if p := strings.TrimSpace(string(pid)); p != "" {
			holder = " (pid " + p + ")"
		}
		return nil, fmt.Errorf("data dir %s is in use by another flotilla process%s; stop it first or use another --data-dir", abs, holder)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	d := &Dir{Path: abs, lock: f}
	os.Remove(d.readyFile())
	return d, nil
}

// Join returns a path inside the directory.
func (d *Dir) Join(elem ...string) string {
	return filepath.Join(append([]string{d.Path}, elem...)...)
}

// Sub creates and returns a subdirectory.
func (d *Dir) Sub(name string) (string, error) {
	p := d.Join(name)
	return p, os.MkdirAll(p, 0o700)
}

// Port returns the port to serve name on: requested if set, else the port
// used last time, else a free one. The choice is recorded, and the port is
// checked to be free now.
func (d *Dir) Port(name string, requested int) (int, error) {
	file := d.Join(portsFile)
	ports, err := readPorts(file)
	if err != nil {
		return 0, err
	}
	port := requested
	if port == 0 {
		port = ports[name]
	}
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		port = p
	} else if err := waitFree(port); err != nil {
		hint := "stop what uses it"
		if name == "apiserver" {
			hint += " or choose another with --port"
		}
		return 0, fmt.Errorf("port %d (%s) is in use on 127.0.0.1; %s", port, name, hint)
	}
	if ports[name] != port {
		ports[name] = port
		data, _ := json.MarshalIndent(ports, "", "  ")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return 0, err
		}
	}
	return port, nil
}

const portsFile = "ports.json"

// readPorts reads the ports recorded in file; none if it does not exist.
func readPorts(file string) (map[string]int, error) {
	ports := map[string]int{}
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return ports, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &ports)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v); delete it to pick new ports", file, err)
	}
	return ports, nil
}

// RecordedPort is the port the process using data dir dir keeps for name,
// as Port recorded it: how another process finds, say, a hub's /metrics.
func RecordedPort(dir, name string) (int, error) {
	file := filepath.Join(dir, portsFile)
	ports, err := readPorts(file)
	if err != nil {
		return 0, err
	}
	if ports[name] == 0 {
		return 0, fmt.Errorf("%s records no %s port", file, name)
	}
	return ports[name], nil
}

// MarkReady records that the process serves.
func (d *Dir) MarkReady() error {
	return os.WriteFile(d.readyFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// Close clears the ready marker and releases the lock.
func (d *Dir) Close() {
	os.Remove(d.readyFile())
	if d.lock != nil {
		d.lock.Close()
	}
}

func (d *Dir) readyFile() string { return ReadyFile(d.Path) }

// ReadyFile is the marker a process in dir writes once it serves.
func ReadyFile(dir string) string { return filepath.Join(dir, "ready") }

// FreePort returns a port free on 127.0.0.1 now, from below the kernel's
// ephemeral range when it can: a port from that range, once released, may be
// taken by any outgoing connection before its new owner binds it.
func FreePort() (int, error) {
	low := ephemeralLow()
	for range 64 {
		if low <= minPort {
			break
		}
		port := minPort + rand.IntN(low-minPort)
		if checkFree(port) == nil {
			return port, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minPort keeps clear of well-known and commonly configured ports.
const minPort = 20000

// ephemeralLow is where the kernel starts choosing ports for outgoing
// connections.
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768 // the Linux default
}

// waitFree checks that a recorded or requested port is free, a few times
// over freeWait: FreePort in other processes probes ports by listening on
// them for a moment, and a process restarted on its recorded ports must not
// fail for meeting one such probe.
func waitFree(port int) error {
	deadline := time.Now().Add(freeWait)
	for {
		err := checkFree(port)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const freeWait = 3 * time.Second

func checkFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Holder says whether a process holds the lock of the data dir at path,
// and which (its PID as it wrote it): how a restarted parent finds the
// processes it left running.
func Holder(path string) (pid int, held bool) {
	f, err := os.OpenFile(filepath.Join(path, "lock"), os.O_RDWR, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b, _ := os.ReadFile(filepath.Join(path, "lock"))
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, true
}
