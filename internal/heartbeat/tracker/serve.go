package tracker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/heartbeat"
	"flotilla.dev/flotilla/internal/metrics"
)

// writeTimeout bounds one message to an agent: a stream that cannot take a
// few hundred bytes in that time is dead.
const writeTimeout = 10 * time.Second

// Serve serves agents' streams on l with mutual TLS until ctx ends.
func Serve(ctx context.Context, l net.Listener, t *Tracker, cert tls.Certificate, clientCAs *x509.CertPool) error {
	// HTTP/1.1 only: a stream is an upgraded HTTP/1.1 connection.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.open(ctx, w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		Protocols:         &protocols,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientCAs,
			MinVersion:   tls.VersionTLS12,
		},
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// open upgrades an agent's request to its stream. The client certificate
// names the cluster; TLS has already verified it against the hub's client CA.
// Everything that can be refused is refused here, with an HTTP status the
// agent logs, before the upgrade.
func (t *Tracker) open(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	data := strings.HasPrefix(r.URL.Path, heartbeat.DataPrefix) && t.Data != nil
	switch {
	case data:
	case r.URL.Path != heartbeat.StreamPath || r.Method != http.MethodGet:
		http.NotFound(w, r)
		return
	case r.Header.Get("Upgrade") != heartbeat.Protocol:
		w.Header().Set("Upgrade", heartbeat.Protocol)
		http.Error(w, r.URL.Path+" must upgrade to "+heartbeat.Protocol, http.StatusUpgradeRequired)
		return
	}
	if t.LeaderElection && !t.leading.Load() {
		// Streams, health and desired state are the leader's: a hub on
		// standby sends agents on to the others they know.
		w.Header().Set(heartbeat.StandbyHeader, "true")
		http.Error(w, "this hub is a standby: another hub on the same storage leads and serves agents; connect to it (hub info lists every hub)", http.StatusServiceUnavailable)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "a client certificate is required", http.StatusUnauthorized)
		return
	}
	subject := r.TLS.PeerCertificates[0].Subject
	cluster, ok := strings.CutPrefix(subject.CommonName, fv1.AgentUserPrefix)
	if !ok || !slices.Contains(subject.Organization, fv1.AgentGroup) {
		http.Error(w, "not an agent identity", http.StatusForbidden)
		return
	}
	var c fv1.Cluster
	if err := t.Client.Get(r.Context(), client.ObjectKey{Name: cluster}, &c, client.UnsafeDisableDeepCopy); apierrors.IsNotFound(err) {
		http.Error(w, "cluster "+cluster+" is not attached to this hub", http.StatusNotFound)
		return
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	attach := attachOf(r.TLS.PeerCertificates[0])
	if why := refusal(&c, attach); why != "" {
		http.Error(w, why, http.StatusForbidden)
		return
	}
	if data {
		t.Data.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clusterKey{}, cluster)))
		return
	}
	if ok, wait := t.streams.allow(cluster, time.Now()); !ok {
		// Answered once the identity may open a stream again (at most a
		// second on): a loop of opens then waits instead of spinning on
		// refusals, which cost the hub as much as the opens.
		select {
		case <-r.Context().Done():
		case <-time.After(min(wait, time.Second)):
		}
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("cluster %s's identity opens streams faster than the hub allows (%d at once, then %d a second): it holds one stream at a time, the newest; retry in %d s", cluster, opensBurst, opensPerSecond, secs), http.StatusTooManyRequests)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// An agent may send its first report without waiting for the switch:
	// keep what the HTTP server already read.
	b, _ := rw.Reader.Peek(rw.Reader.Buffered())
	pending := bytes.Clone(b)
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+heartbeat.Protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	// On its own goroutine, so that the HTTP server's, with its buffers
	// and the request, ends here: an idle stream then holds only its
	// connection and this goroutine's small stack.
	go t.stream(ctx, cluster, attach, conn, pending)
	t.used.add(cluster, r.TLS.PeerCertificates[0].NotBefore)
}

// stream takes cluster's reports until the agent closes the stream, goes
// silent for MissedBeats intervals and one more, or ctx ends. It waits for
// each report in a small frame and never runs deeper, so that an idle
// stream's stack shrinks to its smallest (2-4 KB).
func (t *Tracker) stream(ctx context.Context, cluster, attach string, conn net.Conn, pending []byte) {
	defer metrics.StreamOpened()()
	out := &sender{conn: conn, enc: json.NewEncoder(conn), current: func(first bool) (string, string, []byte) { return t.Changes.Current(cluster, first) }}
	// The connection the stream ends with: a tunnel's, if it switched.
	defer func() { out.connection().Close() }()
	defer context.AfterFunc(ctx, func() { out.connection().Close() })()
	// One stream per identity, the newest: an agent that reconnects must
	// not wait for its old stream to time out. The stream it replaces is
	// told so and closed, never left open without notifications.
	defer t.Changes.SubscribeStream(cluster, out.changed, func() {
		log.FromContext(ctx).Info("a newer stream of the cluster's identity replaced one", "cluster", cluster, "replaced", conn.RemoteAddr().String())
		out.close("a newer stream of cluster " + cluster + "'s identity replaced this one: the hub keeps one stream per identity and sends change notifications on the newest; if this agent did not open it, another holder of its key and certificate did")
	}, out.askTunnel)()

	// The first report may have come with the request, read by TLS but not
	// yet by anyone: it is read, not waited for. Later ones come one per reply.
	var wait func() error
	var waitOn net.Conn
	interval := heartbeat.DefaultInterval
	for first := true; ; first = false {
		// A switch to a tunnel replaces the connection reports come on.
		if c := out.connection(); c != waitOn {
			conn, waitOn, wait = c, c, readable(c)
		}
		conn.SetReadDeadline(time.Now().Add((heartbeat.MissedBeats + 1) * interval))
		if len(pending) == 0 && wait != nil && !first {
			if wait() != nil {
				return
			}
		}
		if d := t.streams.reportDelay(cluster, time.Now()); d > 0 {
			// More reports than an agent sends: they wait their turn.
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		// Each report is taken on a goroutine that ends with it. Decoding
		// it and writing the status grow a stack to 16 KB or more, and a
		// parked goroutine gets that back only by halves, one per
		// collection: at 2000 clusters streams held 15 KB of stack each.
		var ok bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			pending, interval, ok = t.take(ctx, cluster, attach, conn, pending, interval, out)
		}()
		<-done
		if !ok {
			return
		}
	}
}

// take reads one report from conn, after pending (bytes already read from
// it), and replies. It returns what it read past the report, the interval the
// agent reports at, and whether the stream goes on. Its decoder lives for
// one report: an idle stream holds no decoder buffer. A stream whose
// attach has ended (detached, maybe attached again) is told so and closed.
func (t *Tracker) take(ctx context.Context, cluster, attach string, conn io.Reader, pending []byte, interval time.Duration, out *sender) ([]byte, time.Duration, bool) {
	pr := bytes.NewReader(pending)
	rep, dec, next, err := heartbeat.DecodeReport(io.MultiReader(pr, conn))
	switch next {
	case heartbeat.StreamUnreadable:
		// The stream cannot be read past this: say why and end it.
		out.refuse(ctx, cluster, "bad report: "+err.Error())
		return nil, 0, false
	case heartbeat.StreamEnded:
		return nil, 0, false
	case heartbeat.ReportBad:
		// Read whole: refuse it, and take the next one.
		out.refuse(ctx, cluster, "bad report: "+err.Error())
		return following(dec, pr, conn), interval, true
	}
	rest := following(dec, pr, conn)
	if why := heartbeat.ClaimRefusal(cluster, out.seq, &rep); why != "" {
		out.refuse(ctx, cluster, "refused report: "+why)
		return rest, interval, true
	}
	out.seq = rep.Seq
	if rep.Multiplex {
		return t.multiplex(ctx, cluster, out, rest), interval, true
	}
	if why := t.stillAttached(ctx, cluster, attach); why != "" {
		out.send(&heartbeat.Response{Error: why})
		return nil, 0, false
	}
	resp, err := t.Observe(ctx, cluster, rep)
	switch {
	case errors.Is(err, heartbeat.ErrNotAttached):
		resp.Error = "cluster " + cluster + " is not attached to this hub"
	case err != nil:
		// The hub could not read the Cluster; the next report tries again.
		log.FromContext(ctx).Error(err, "taking a heartbeat", "cluster", cluster)
	}
	if out.send(&resp) != nil || errors.Is(err, heartbeat.ErrNotAttached) {
		return nil, 0, false
	}
	return rest, rep.Interval(), true
}

// following returns the bytes read past the report dec decoded, in order:
// those in dec's buffer, those of pending (pr) it did not reach, and those
// TLS has decrypted (a record may hold several reports) or received but
// nobody has read. An agent may write reports without waiting for replies;
// the stream waits for the socket to be readable, and would never see the
// reports already taken off it.
func following(dec *json.Decoder, pr *bytes.Reader, conn io.Reader) []byte {
	// Mostly the newline after the report, which is left unread.
	rest := appendUnread(nil, dec.Buffered())
	rest = appendUnread(rest, pr)
	if c, ok := conn.(net.Conn); ok {
		// Read what is there without waiting: an expired deadline
		// fails a read that would wait, and a TLS connection survives
		// a read timeout. The stream sets the next deadline.
		c.SetReadDeadline(time.Now().Add(-time.Second))
		// Pooled: a buffer of its own per report was 4 KB of garbage
		// per cluster every 10 s, 2 MB/s at 5,000 clusters.
		buf := readBufs.Get().(*[4 << 10]byte)
		defer readBufs.Put(buf)
		for len(rest) < heartbeat.MaxReport {
			n, err := c.Read(buf[:])
			rest = append(rest, buf[:n]...)
			if err != nil || n == 0 {
				break
			}
		}
	}
	if len(bytes.TrimSpace(rest)) == 0 {
		return nil
	}
	return rest
}

var readBufs = sync.Pool{New: func() any { return new([4 << 10]byte) }}

// appendUnread appends to rest what r holds past leading white space, which
// a JSON decoder skips anyway.
func appendUnread(rest []byte, r io.Reader) []byte {
	br, ok := r.(*bytes.Reader)
	if !ok {
		b, _ := io.ReadAll(r)
		return append(rest, b...)
	}
	for br.Len() > 0 {
		c, _ := br.ReadByte()
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			br.UnreadByte()
			n := len(rest)
			rest = slices.Grow(rest, br.Len())[:n+br.Len()]
			br.Read(rest[n:])
			return rest
		}
	}
	return rest
}

// sender writes a stream's messages, one at a time. Each carries the token
// current when it is written, so tokens on the wire never go backwards, and
// the desired policies with it if the stream has not carried them yet.
type sender struct {
	mu      sync.Mutex
	conn    net.Conn
	enc     *json.Encoder
	current func(first bool) (token, digest string, desired []byte)
	sent    string // the last token written
	carried string // the digest of the last desired policies written
	err     error  // the write that broke the stream, or the close

	refusedAt time.Time // when a refused report was last logged
	refusals  int       // refused reports not yet logged

	// seq is the Seq of the last report the stream took, and multiplexed
	// whether the stream goes over a tunnel. Only the stream's report
	// goroutines use them, one after the other.
	seq         uint64
	multiplexed bool
}

func (s *sender) changed() { s.send(nil) }

// askTunnel tells the agent to open its tunnel.
func (s *sender) askTunnel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if s.err = s.enc.Encode(heartbeat.Message{Tunnel: true}); s.err != nil {
		s.conn.Close()
	}
}

// errClosed is a sender's error once the hub has closed its stream.
var errClosed = errors.New("stream closed by the hub")

// close ends the stream, telling the agent why in its last message.
func (s *sender) close(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	s.enc.Encode(heartbeat.Message{Closed: reason})
	s.err = errClosed
	s.conn.Close()
}

// refuse replies to a report the hub cannot read, and logs it: the first
// of a stream, then at most one line every refusalLogEvery with a count, so
// that an agent sending nothing else cannot flood the hub's log.
func (s *sender) refuse(ctx context.Context, cluster, why string) {
	s.send(&heartbeat.Response{Error: why})
	s.mu.Lock()
	s.refusals++
	n := s.refusals
	due := time.Since(s.refusedAt) >= refusalLogEvery
	if due {
		s.refusedAt, s.refusals = time.Now(), 0
	}
	s.mu.Unlock()
	if due {
		log.FromContext(ctx).Info("refused an agent's report", "cluster", cluster, "reason", why, "refusedSinceLastLog", n)
	}
}

// refusalLogEvery spaces the log lines of one stream's refused reports.
const refusalLogEvery = 10 * time.Second

// send writes reply, or, for nil, the token if it moved since the last
// message.
func (s *sender) send(reply *heartbeat.Response) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	tok, digest, desired := s.current(s.sent == "")
	m := heartbeat.Message{Reply: reply}
	if reply != nil {
		reply.Changes = tok
	} else if tok != s.sent {
		m.Changes = tok
	} else {
		return nil
	}
	if len(desired) > 0 && digest != s.carried {
		m.Desired = desired
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if s.err = s.enc.Encode(m); s.err != nil {
		s.conn.Close()
		return s.err
	}
	s.sent = tok
	if m.Desired != nil {
		s.carried = digest
	}
	return nil
}
