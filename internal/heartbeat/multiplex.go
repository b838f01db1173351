package heartbeat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// switchTimeout bounds how long an agent waits for the hub to answer its
// Multiplex report, which the hub answers as it reads it.
const switchTimeout = 10 * time.Second

// askToMultiplex answers the hub's ask for a tunnel. It waits for the report
// in flight, if any, to be answered, so that nothing plain follows its own
// Multiplex report, then waits for the reader to switch the connection. A
// hub that refuses leaves the stream plain, and may ask again; a switch that
// fails ends the stream, which the agent opens again.
func (s *Stream) askToMultiplex() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if err := s.enc.Encode(Report{Cluster: s.cluster, Seq: s.seq, Multiplex: true}); err != nil {
		s.Close()
		return
	}
	timer := time.NewTimer(switchTimeout)
	defer timer.Stop()
	select {
	case <-s.switched: // a failed switch has ended the stream
	case <-s.replies:
		// The hub did not take it (it no longer waits for a tunnel).
		s.muxing.Store(false)
	case <-s.done:
	case <-timer.C:
		s.Close()
	}
}

// switchOver goes on over the tunnel the hub has just made of the stream's
// connection, in answer to the agent's Multiplex report: in holds what was
// read past the hub's last plain message, the first bytes of the session.
func (s *Stream) switchOver(in *bufio.Reader, over func(io.ReadWriteCloser, []byte) (io.ReadWriteCloser, error)) (*bufio.Reader, error) {
	if over == nil || !s.muxing.Load() {
		return nil, errors.New("the hub switched the stream to a tunnel the agent did not ask for")
	}
	buffered, _ := in.Peek(in.Buffered())
	rwc, err := over(s.conn(), bytes.Clone(buffered))
	if err != nil {
		err = fmt.Errorf("switching the stream's connection to a tunnel: %w", err)
	} else {
		s.cmu.Lock()
		s.rwc = rwc
		s.cmu.Unlock()
	}
	s.switched <- err
	if err != nil {
		return nil, err
	}
	return bufio.NewReader(rwc), nil
}

// conn is the stream's current connection: the upgraded one, or the
// tunnel's first stream once switched.
func (s *Stream) conn() io.ReadWriteCloser {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.rwc
}

// writer writes to the stream's current connection.
type writer struct{ s *Stream }

func (w writer) Write(p []byte) (int, error) { return w.s.conn().Write(p) }
