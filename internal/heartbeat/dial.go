package heartbeat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// ErrNotAttached is why the hub refuses a cluster it does not know.
var ErrNotAttached = errors.New("cluster not attached")

// ErrStandby is a hub that does not lead refusing a stream: another hub on
// the same storage serves agents, and the agent tries the next it knows.
var ErrStandby = errors.New("this hub is a standby")

// StandbyHeader marks a standby hub's refusal of a stream.
const StandbyHeader = "Flotilla-Standby"

// IsStandby says whether resp is a standby hub's refusal of a stream.
func IsStandby(resp *http.Response) bool {
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(StandbyHeader) != ""
}

// hubInfo is where the hub publishes its agent endpoint, as agents read it.
const hubInfo = "the hub's ConfigMap " + fv1.HubInfoNamespace + "/" + fv1.HubInfoConfigMap

// Stream is an agent's end of its stream to the hub.
type Stream struct {
	cmu     sync.Mutex
	rwc     io.ReadWriteCloser // guarded by cmu: a switch to a tunnel replaces it
	enc     *json.Encoder      // writes to the current rwc
	replies chan Response
	done    chan struct{} // closed when the hub's side can no longer be read
	err     error         // why, once done is closed
	mu      sync.Mutex    // one report at a time
	seq     uint64        // the last report's Seq
	cluster string        // the last report's Cluster

	muxing   atomic.Bool // a switch to a tunnel was asked for, or made
	switched chan error  // the reader's outcome of a switch
}

// Handlers are what an agent does with what the hub pushes on its stream.
type Handlers struct {
	// Change gets the change token of every message, pushed or in a
	// reply, in the order the hub sent them.
	Change func(token string)
	// Multiplex, if set, lets the hub's requests ride the stream's
	// connection when the hub asks for a tunnel. It is called on the
	// stream's reader once the connection is switched, with the connection
	// and the bytes already read from it, and returns the connection the
	// stream goes on over; it serves the hub's requests until the
	// connection closes. Unset, the hub's asks go unanswered.
	Multiplex func(conn io.ReadWriteCloser, buffered []byte) (io.ReadWriteCloser, error)
	// Desired gets the cluster's desired policies whenever the hub pushes
	// them, before the change token of the same message.
	Desired func(Desired)
}

// Dial opens a stream at url through rt, which must speak HTTP/1.1: the
// upgrade needs it. onChange gets the change token of every message, pushed
// or in a reply, in the order the hub sent them.
func Dial(ctx context.Context, rt http.RoundTripper, url string, onChange func(token string)) (*Stream, error) {
	return DialWith(ctx, rt, url, Handlers{Change: onChange})
}

// DialWith is Dial with handlers for everything the hub pushes.
func DialWith(ctx context.Context, rt http.RoundTripper, url string, h Handlers) (*Stream, error) {
	rwc, err := Upgrade(ctx, rt, url)
	if err != nil {
		return nil, err
	}
	s := newStream(rwc)
	go s.read(h)
	return s, nil
}

// Upgrade opens the connection of a stream at url through rt: the HTTP
// upgrade to Protocol, or the hub's refusal, with its message, as an error.
func Upgrade(ctx context.Context, rt http.RoundTripper, url string) (io.ReadWriteCloser, error) {
	return UpgradeTo(ctx, rt, url, Protocol)
}

// UpgradeTo opens a connection at url through rt upgraded to protocol.
func UpgradeTo(ctx context.Context, rt http.RoundTripper, url, protocol string) (io.ReadWriteCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, ExplainTLS(err, "the CA the hub publishes for its agent endpoint (heartbeatCA in "+hubInfo+")")
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		err := fmt.Errorf("hub answered %s: %s", resp.Status, bytes.TrimSpace(body))
		switch resp.StatusCode {
		case http.StatusNotFound:
			err = fmt.Errorf("%w: %w", ErrNotAttached, err)
		case http.StatusServiceUnavailable:
			if IsStandby(resp) {
				err = fmt.Errorf("%w: %w", ErrStandby, err)
			}
		case http.StatusUnauthorized:
			err = fmt.Errorf("the hub refused the agent's credential (401): %w; the agent's identity is missing or not one the hub issued", err)
		}
		return nil, err
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("hub switched protocols but the connection is not writable")
	}
	return rwc, nil
}

func newStream(rwc io.ReadWriteCloser) *Stream {
	s := &Stream{rwc: rwc, replies: make(chan Response, 1), done: make(chan struct{}), switched: make(chan error, 1)}
	s.enc = json.NewEncoder(writer{s})
	return s
}

func (s *Stream) read(h Handlers) {
	in := bufio.NewReader(s.conn())
	for {
		m, err := nextMessage(in)
		if err == nil && m.Multiplexed {
			if in, err = s.switchOver(in, h.Multiplex); err == nil {
				continue
			}
		}
		if err != nil {
			s.err = err
			close(s.done)
			return
		}
		if m.Closed != "" {
			// The hub's last word: the stream ends for this reason.
			s.err = errors.New(m.Closed)
			close(s.done)
			return
		}
		if len(m.Desired) > 0 {
			var d Desired
			err := json.Unmarshal(m.Desired, &d)
			if err == nil {
				err = d.Verify()
			}
			if err != nil {
				s.err = fmt.Errorf("the hub sent unreadable desired policies: %w", err)
				close(s.done)
				return
			}
			if h.Desired != nil {
				h.Desired(d)
			}
		}
		// Here, not by Beat's caller: tokens must be taken in the order
		// the hub sent them, or an older one in a reply could undo a
		// newer one pushed just after it.
		tok := m.Changes
		if m.Reply != nil {
			tok = m.Reply.Changes
		}
		if tok != "" && h.Change != nil {
			h.Change(tok)
		}
		if m.Tunnel && h.Multiplex != nil && s.muxing.CompareAndSwap(false, true) {
			go s.askToMultiplex()
		}
		if m.Reply != nil {
			select {
			case s.replies <- *m.Reply:
			default: // nobody asked: the hub's own mistake
			}
		}
	}
}

// nextMessage reads the hub's next message from in: one line of JSON, as
// the hub writes them, at most MaxMessage bytes, so that a hub (or anything
// answering in its place) cannot grow the agent's memory with a line that
// never ends. Blank lines are skipped.
func nextMessage(in *bufio.Reader) (Message, error) {
	var line []byte
	for {
		part, err := in.ReadSlice('\n')
		if len(line)+len(part) > MaxMessage {
			return Message{}, fmt.Errorf("the hub sent a message larger than %d KiB: it is not speaking %s", MaxMessage>>10, Protocol)
		}
		line = append(line, part...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if len(bytes.TrimSpace(line)) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Message{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			line = line[:0]
			continue
		}
		return DecodeMessage(line)
	}
}

// DecodeMessage reads one message the hub wrote.
func DecodeMessage(line []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(line, &m); err != nil {
		return Message{}, fmt.Errorf("the hub sent a message that is not one of %s (%v): %.100q", Protocol, err, line)
	}
	return m, nil
}

// Beat sends r and waits for the hub's reply, at most until ctx ends. A
// Stream that fails stays failed: Close it and Dial again.
func (s *Stream) Beat(ctx context.Context, r Report) (Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A blocked write or a missing reply ends with ctx, and so does the
	// stream: a late reply must not answer the next report.
	defer context.AfterFunc(ctx, func() { s.Close() })()
	// Numbered per stream: the hub refuses a number it has taken, a frame
	// replayed into the stream.
	s.seq++
	r.Seq = s.seq
	s.cluster = r.Cluster
	if err := s.enc.Encode(r); err != nil {
		s.Close()
		return Response{}, fmt.Errorf("sending a heartbeat: %w", err)
	}
	select {
	case resp := <-s.replies:
		return answer(resp)
	case <-s.done:
		select {
		case resp := <-s.replies: // the hub said why before it closed
			return answer(resp)
		default:
			return Response{}, fmt.Errorf("hub closed the stream: %w", s.err)
		}
	case <-ctx.Done():
		return Response{}, fmt.Errorf("no reply from the hub: %w", ctx.Err())
	}
}

func answer(r Response) (Response, error) {
	if r.Error != "" {
		return r, errors.New("hub refused the heartbeat: " + r.Error)
	}
	return r, nil
}

// Done is closed once the hub's side of the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err says why the hub's side ended (the reason the hub gave, if it gave
// one); nil while Done is open.
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the stream.
func (s *Stream) Close() error { return s.conn().Close() }
