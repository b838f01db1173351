package tunnel

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"flotilla.dev/flotilla/internal/netwait"
)

// writeTimeout bounds a write to the agent: a peer that reads nothing for
// that long ends the tunnel.
const writeTimeout = 10 * time.Second

var (
	// errAgentClosed: the agent closed the tunnel (it went idle, say).
	errAgentClosed = errors.New("the agent closed the tunnel")
	// errClosed: the hub closed the tunnel.
	errClosed = errors.New("the tunnel is closed")
)

// hubSession is the hub's end of a tunnel, speaking the yamux framing of the
// agent's end with no goroutine of its own. A yamux session keeps two for as
// long as it lives, one reading the connection and one writing it, each
// with a stack that TLS grows to 8 KB: most of what an idle tunnel cost the
// hub. Here whoever waits on the agent (a stream's reader, a writer out of
// window, the heartbeat stream waiting for the next report) takes a turn at
// reading the connection for all, one frame at a time, and writers write
// their own frames, one at a time. A turn waits for the socket in the
// poller and reads the frame on a goroutine that ends with it, so the
// heartbeat stream's goroutine, which waits through a tunnel's idle hours,
// keeps a small stack.
type hubSession struct {
	conn  net.Conn
	in    prefix       // bytes read past the switch, read first
	ready func() error // waits in the poller until conn is readable; nil where it cannot

	wmu sync.Mutex // one frame written at a time

	mu       sync.Mutex
	changed  sync.Cond // broadcast when a frame is taken, a turn ends, or the session does
	reading  bool      // a turn is under way
	deadline time.Time // the read deadline the turn reads under
	streams  map[uint32]*hubStream
	next     uint32   // the next stream's number: the hub's are odd
	unacked  int      // streams opened that the agent has not accepted yet
	control  []header // frames a turn could not write at once, for the next writer
	err      error    // why the session ended
	ended    func()   // called once it has

	// The frame a turn reads: one that times out leaves it half read.
	hdr   header
	nhdr  int
	body  *[]byte // lent
	nbody int
}

func newHubSession(conn net.Conn, buffered []byte, ended func()) *hubSession {
	s := &hubSession{conn: conn, in: buffered, ready: netwait.TLS(conn), streams: map[uint32]*hubStream{}, next: 1, ended: ended}
	s.changed.L = &s.mu
	return s
}

// open opens a stream to the agent's end. At most acceptBacklog wait for
// the agent to accept them: its session resets those past its backlog.
func (s *hubSession) open() (*hubStream, error) {
	s.mu.Lock()
	err := s.await(func() bool { return s.unacked < acceptBacklog }, func() time.Time { return time.Time{} })
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	st := &hubStream{s: s, id: s.next, recvWindow: streamWindow, sendWindow: streamWindow}
	s.next += 2
	s.unacked++
	s.streams[st.id] = st
	s.mu.Unlock()
	h := frameHeader(typeWindowUpdate, flagSYN, st.id, 0)
	if err := s.write(&h, nil); err != nil {
		return nil, err
	}
	return st, nil
}

// Close ends the session, telling the agent.
func (s *hubSession) Close() error {
	s.sendControl(frameHeader(typeGoAway, 0, 0, goAwayNormal))
	s.fail(errClosed)
	return nil
}

// fail ends the session for err, once.
func (s *hubSession) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.changed.Broadcast()
	s.mu.Unlock()
	s.conn.Close()
	if s.ended != nil {
		s.ended()
	}
}

// await waits, with s.mu held, until ready holds, the session ends (its
// error) or deadline passes (os.ErrDeadlineExceeded), taking turns at
// reading the connection meanwhile when nobody else is.
func (s *hubSession) await(ready func() bool, deadline func() time.Time) error {
	for {
		if ready() {
			return nil
		}
		if s.err != nil {
			return s.err
		}
		d := deadline()
		if !d.IsZero() && !time.Now().Before(d) {
			return os.ErrDeadlineExceeded
		}
		if s.reading {
			s.cut(d)
			s.changed.Wait()
			continue
		}
		s.reading, s.deadline = true, d
		s.changed.Broadcast() // waiters with an earlier deadline cut the turn short
		s.mu.Unlock()
		err := s.turn()
		s.mu.Lock()
		s.reading = false
		s.changed.Broadcast()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			s.mu.Unlock()
			s.fail(err)
			s.mu.Lock()
		}
	}
}

// cut shortens the turn under way to deadline d, with s.mu held.
func (s *hubSession) cut(d time.Time) {
	if s.reading && !d.IsZero() && (s.deadline.IsZero() || d.Before(s.deadline)) {
		s.deadline = d
		s.conn.SetReadDeadline(d)
	}
}

// turn reads one frame and takes it in, or returns the deadline's error.
// What the connection holds already is read first (TLS may have decrypted a
// frame the socket no longer shows); then the turn waits for the socket.
func (s *hubSession) turn() error {
	s.setReadDeadline(time.Unix(1, 0))
	h, body, err := s.readFrame()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.setReadDeadline(time.Time{})
		if s.ready != nil {
			if err := s.ready(); err != nil {
				return err
			}
		}
		h, body, err = s.readFrame()
	}
	if err != nil {
		return err
	}
	return s.take(h, body)
}

// setReadDeadline sets the connection's read deadline to t, or to the
// turn's if t is zero.
func (s *hubSession) setReadDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.IsZero() {
		t = s.deadline
	}
	s.conn.SetReadDeadline(t)
}

// readFrame reads the rest of the frame under way, on a goroutine that ends
// with it: TLS's record reader grows a stack to 8 KB.
func (s *hubSession) readFrame() (h header, body *[]byte, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h, body, err = s.readFrameHere()
	}()
	<-done
	return h, body, err
}

func (s *hubSession) readFrameHere() (header, *[]byte, error) {
	for s.nhdr < headerSize {
		n, err := s.in.read(s.conn, s.hdr[s.nhdr:])
		if s.nhdr += n; err != nil {
			return header{}, nil, err
		}
	}
	if err := s.hdr.check(); err != nil {
		return header{}, nil, err
	}
	if s.hdr.typ() == typeData && s.hdr.length() > 0 && s.body == nil {
		s.body = lend(int(s.hdr.length()))
	}
	for s.body != nil && s.nbody < len(*s.body) {
		n, err := s.in.read(s.conn, (*s.body)[s.nbody:])
		if s.nbody += n; err != nil {
			return header{}, nil, err
		}
	}
	h, body := s.hdr, s.body
	s.nhdr, s.body, s.nbody = 0, nil, 0
	return h, body, nil
}

// take takes in a frame the agent sent; body, if any, is the stream's to
// give back once read.
func (s *hubSession) take(h header, body *[]byte) error {
	switch h.typ() {
	case typePing:
		if h.has(flagSYN) { // the agent's keepalive
			s.sendControl(frameHeader(typePing, flagACK, 0, h.length()))
		}
		return nil
	case typeGoAway:
		return errAgentClosed
	}
	id := h.stream()
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	switch {
	case st != nil && h.has(flagSYN):
		return fmt.Errorf("%w: it opened stream %d, which the hub had", errProtocol, id)
	case st != nil:
		return st.take(h, body)
	case h.has(flagSYN):
		// Requests flow from the hub to the agent only: an agent's
		// identity must not act on the hub through its tunnel.
		s.sendControl(frameHeader(typeWindowUpdate, flagRST, id, 0))
	}
	if body != nil {
		giveBack(body)
	}
	return nil // a frame of a stream that has ended
}

// write writes a frame (h, then data), after the control frames a turn
// left.
func (s *hubSession) write(h *header, data []byte) error {
	s.wmu.Lock()
	err := s.writeLocked(h, data)
	s.wmu.Unlock()
	s.flushControl()
	return err
}

// sendControl writes a control frame without waiting for a writer: a turn
// must not wait on a write, or a peer that waits for the hub to read before
// it reads would hold both. If a writer is under way, it sends the frame
// once its own is written.
func (s *hubSession) sendControl(h header) {
	s.mu.Lock()
	s.control = append(s.control, h)
	s.mu.Unlock()
	s.flushControl()
}

func (s *hubSession) flushControl() {
	for {
		s.mu.Lock()
		pending := len(s.control) > 0
		s.mu.Unlock()
		if !pending || !s.wmu.TryLock() {
			return
		}
		err := s.writeLocked(nil, nil)
		s.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// writeLocked writes, with s.wmu held, the control frames waiting, then h
// and data.
func (s *hubSession) writeLocked(h *header, data []byte) error {
	s.mu.Lock()
	frames := s.control
	s.control = nil
	s.mu.Unlock()
	bp := lend(headerSize*(len(frames)+1) + min(len(data), 4<<10))
	defer giveBack(bp)
	buf := (*bp)[:0]
	for _, f := range frames {
		buf = append(buf, f[:]...)
	}
	if h != nil {
		buf = append(buf, h[:]...)
	}
	if len(data) <= 4<<10 { // one record for a small frame
		buf, data = append(buf, data...), nil
	}
	if len(buf) == 0 {
		return nil
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.conn.Write(buf)
	if err == nil && len(data) > 0 {
		_, err = s.conn.Write(data)
	}
	if err != nil {
		// A TLS connection is broken by a write that failed part way.
		err = fmt.Errorf("writing to the agent: %w", err)
		s.fail(err)
	}
	return err
}
