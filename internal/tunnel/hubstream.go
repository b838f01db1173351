package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// errReset: the agent's end reset the stream.
var errReset = errors.New("the agent's end reset the stream")

// hubStream is a stream of a hubSession, a net.Conn: the heartbeat
// stream's, or one request's. Its fields are guarded by its session's mu.
type hubStream struct {
	s  *hubSession
	id uint32

	recv       []*[]byte // data taken in and not read yet, lent
	off        int       // how much of recv[0] was read
	recvWindow uint32    // what the agent may still send
	consumed   uint32    // read since the last window update
	sendWindow uint32    // what the hub may still send

	readDeadline, writeDeadline time.Time

	acked   bool // the agent accepted the stream
	finRecv bool // the agent will send no more
	finSent bool // the hub will send no more
	reset   bool
	closed  bool
}

var _ net.Conn = (*hubStream)(nil)

// take takes in a frame of the stream.
func (st *hubStream) take(h header, body *[]byte) error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.typ() == typeWindowUpdate {
		st.sendWindow += h.length()
	}
	if body != nil {
		if uint32(len(*body)) > st.recvWindow {
			giveBack(body)
			return fmt.Errorf("%w: stream %d sent past its window", errProtocol, st.id)
		}
		st.recvWindow -= uint32(len(*body))
		if st.closed {
			giveBack(body)
		} else {
			st.recv = append(st.recv, body)
		}
	}
	st.finRecv = st.finRecv || h.has(flagFIN)
	st.reset = st.reset || h.has(flagRST)
	if !st.acked && (h.has(flagACK) || st.finRecv || st.reset) {
		st.acked = true
		s.unacked--
	}
	st.forgetIfDone()
	s.changed.Broadcast()
	return nil
}

// forgetIfDone drops the stream from its session once neither end will
// send more, with s.mu held.
func (st *hubStream) forgetIfDone() {
	if st.reset || (st.finRecv && st.finSent) {
		delete(st.s.streams, st.id)
	}
}

func (st *hubStream) readable() bool {
	return len(st.recv) > 0 || st.finRecv || st.reset || st.closed
}

// Wait waits until the stream has something to read, without a buffer or a
// deep stack: the heartbeat stream waits so between reports.
func (st *hubStream) Wait() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.await(st.readable, func() time.Time { return st.readDeadline })
}

func (st *hubStream) Read(p []byte) (int, error) {
	s := st.s
	s.mu.Lock()
	err := s.await(st.readable, func() time.Time { return st.readDeadline })
	if len(st.recv) == 0 {
		switch {
		case err != nil:
		case st.closed:
			err = net.ErrClosed
		case st.reset:
			err = errReset
		default:
			err = io.EOF
		}
		s.mu.Unlock()
		return 0, err
	}
	n := copy(p, (*st.recv[0])[st.off:])
	if st.off += n; st.off == len(*st.recv[0]) {
		giveBack(st.recv[0])
		st.recv[0], st.off = nil, 0
		if st.recv = st.recv[1:]; len(st.recv) == 0 {
			st.recv = nil // an idle stream holds no buffer
		}
	}
	// The agent may send again once the hub has read half a window.
	st.consumed += uint32(n)
	var update uint32
	if st.consumed >= streamWindow/2 && !st.finRecv && !st.reset {
		update, st.consumed = st.consumed, 0
		st.recvWindow += update
	}
	s.mu.Unlock()
	if update > 0 {
		s.sendControl(frameHeader(typeWindowUpdate, 0, st.id, update))
	}
	return n, nil
}

func (st *hubStream) Write(p []byte) (int, error) {
	s := st.s
	written := 0
	for written < len(p) {
		s.mu.Lock()
		err := s.await(func() bool { return st.sendWindow > 0 || st.reset || st.finSent }, func() time.Time { return st.writeDeadline })
		switch {
		case err != nil:
		case st.finSent:
			err = net.ErrClosed
		case st.reset:
			err = errReset
		}
		if err != nil {
			s.mu.Unlock()
			return written, err
		}
		n := min(len(p)-written, int(st.sendWindow))
		st.sendWindow -= uint32(n)
		s.mu.Unlock()
		h := frameHeader(typeData, 0, st.id, uint32(n))
		if err := s.write(&h, p[written:written+n]); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// Close closes the stream; the heartbeat stream's Close (hbStream) closes
// its session. A stream the agent is still sending on is reset rather than
// finished: the hub reads no more of it, and the agent's writer, which
// would otherwise wait for a window that never opens, fails at once.
func (st *hubStream) Close() error {
	s := st.s
	s.mu.Lock()
	if st.closed {
		s.mu.Unlock()
		return nil
	}
	tell := !st.finSent && !st.reset && s.err == nil
	flag := uint16(flagFIN)
	if !st.finRecv {
		flag, st.reset = flagRST, true
	}
	for _, b := range st.recv {
		giveBack(b)
	}
	st.closed, st.finSent, st.recv, st.off = true, true, nil, 0
	st.forgetIfDone()
	s.changed.Broadcast()
	s.mu.Unlock()
	if tell {
		s.sendControl(frameHeader(typeWindowUpdate, flag, st.id, 0))
	}
	return nil
}

func (st *hubStream) LocalAddr() net.Addr  { return st.s.conn.LocalAddr() }
func (st *hubStream) RemoteAddr() net.Addr { return st.s.conn.RemoteAddr() }

func (st *hubStream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

func (st *hubStream) SetReadDeadline(t time.Time) error {
	st.setDeadline(&st.readDeadline, t)
	return nil
}

func (st *hubStream) SetWriteDeadline(t time.Time) error {
	st.setDeadline(&st.writeDeadline, t)
	return nil
}

// setDeadline sets one of the stream's deadlines, d, to t; a wait past it
// ends now.
func (st *hubStream) setDeadline(d *time.Time, t time.Time) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	*d = t
	s.cut(t)
	s.changed.Broadcast()
}

// hbStream is the heartbeat stream: closing it closes the tunnel, as the
// connection is the heartbeat stream's.
type hbStream struct{ *hubStream }

func (h hbStream) Close() error { return h.s.Close() }
