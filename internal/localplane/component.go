package localplane

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"flotilla.dev/flotilla/internal/procs"
)

// crashLoop is how many quick exits in a row make a component Failed.
const crashLoop = 3

// quickExit is how soon after its start an exit counts as quick.
const quickExit = 15 * time.Second

// component is one process the supervisor keeps running.
type component struct {
	name    string
	logFile string
	version string // the version it runs
	proc    *procs.Proc
	started time.Time
	quick   int       // quick exits in a row
	retry   time.Time // not restarted before
	ready   bool
	message string
	// Set while the component is being stopped on purpose: drained from
	// the balancer until drainAt, then killed if still running at killAt.
	drainAt, killAt time.Time
}

// running says whether the process runs.
func (c *component) running() bool {
	if c.proc == nil {
		return false
	}
	select {
	case <-c.proc.Done():
		return false
	default:
		return true
	}
}

// reap notes an exit, once: a quick one counts towards Failed, and the
// restart waits longer each time (1 s doubling to 30 s).
func (c *component) reap(now time.Time) {
	if c.proc == nil {
		return
	}
	if c.running() {
		if !c.killAt.IsZero() && now.After(c.killAt) {
			c.proc.Signal(syscall.SIGKILL)
		}
		return
	}
	err := c.proc.Err()
	c.proc, c.ready = nil, false
	if !c.killAt.IsZero() {
		// Stopped as asked: started again at once, at its new version.
		c.drainAt, c.killAt, c.retry, c.message = time.Time{}, time.Time{}, time.Time{}, ""
		return
	}
	if now.Sub(c.started) < quickExit {
		c.quick++
	} else {
		c.quick = 1
	}
	backoff := min(time.Second<<min(c.quick-1, 5), 30*time.Second)
	c.retry = now.Add(backoff)
	c.message = fmt.Sprintf("%s exited (%v); restarting; its log: %s%s", c.name, err, c.logFile, lastLine(c.logFile))
}

// failed says whether the component keeps exiting at start.
func (c *component) failed() bool { return c.quick >= crashLoop && !c.running() }

// start runs the component at version with run unless it waits to retry.
func (c *component) start(now time.Time, version string, run func() (*procs.Proc, error)) {
	if now.Before(c.retry) {
		return
	}
	p, err := run()
	if err != nil {
		c.quick++
		c.retry = now.Add(5 * time.Second)
		c.message = fmt.Sprintf("%s cannot start: %v", c.name, err)
		return
	}
	c.proc, c.version, c.started, c.ready = p, version, now, false
}

// retire asks the component to stop (SIGTERM) without waiting for it:
// reap kills it if it still runs after grace, and notes its exit.
func (c *component) retire(now time.Time, grace time.Duration) {
	if c.proc == nil || !c.killAt.IsZero() {
		return
	}
	c.ready, c.killAt = false, now.Add(grace)
	c.message = c.name + " is stopping to change version"
	c.proc.Signal(syscall.SIGTERM)
}

// stop ends the component, politely first.
func (c *component) stop(grace time.Duration) {
	if c.proc != nil {
		c.proc.Stop(grace)
	}
	c.proc, c.ready = nil, false
}

func (c *component) status() Component {
	out := Component{Name: c.name, Version: c.version, Ready: c.running() && c.ready, Failed: c.failed()}
	if !out.Ready {
		out.Message = c.message
	}
	return out
}

// lastLine is the last non-empty line of the log at path, for a message
// that names the cause without opening the log.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	last := strings.TrimSpace(string(lines[len(lines)-1]))
	if last == "" {
		return ""
	}
	if len(last) > 300 {
		last = last[:300] + "…"
	}
	return " (last line: " + last + ")"
}
