package heartbeat

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// fakeConn is a stream's connection whose hub side is data.
type fakeConn struct{ io.Reader }

func (fakeConn) Write(p []byte) (int, error) { return len(p), nil }
func (fakeConn) Close() error                { return nil }

// FuzzMessages feeds what a hub (or whatever answers in its place) sends on
// a stream to the agent's reader, as the agent runs it. Whatever the bytes,
// it must not panic, must end, must hand on change tokens in the order
// they came, and what it decodes must encode back to itself.
func FuzzMessages(f *testing.F) {
	tok := Token{Epoch: "a1b2c3", Revs: [kinds]uint64{3, 4}, Policies: "77"}.String()
	for _, seed := range []string{
		`{"reply":{"changes":"` + tok + `"}}` + "\n",
		`{"changes":"` + tok + `"}` + "\n" + `{"tunnel":true}` + "\n" + `{"reply":{"detach":true}}` + "\n",
		`{"reply":{"error":"bad report","retry":"later","refused":"too big"}}` + "\n" + `{"closed":"replaced"}` + "\n",
		"\n\n  \n" + `{"changes":"x.1.2."}` + "\r\n",
		`{"changes":"` + tok + `"}`, // no newline: cut off
		`{"reply":null,"changes":5}` + "\n", `[]` + "\n", `null` + "\n", `{"reply":{"changes":"a.b.c.d"}}{"changes":"x"}` + "\n",
		`{"closed":""}` + "\n", "\x00\n", "\xff\n", `{"changes":"\ud800"}` + "\n",
		`{"changes":"` + strings.Repeat("x", MaxMessage) + `"}` + "\n",
		strings.Repeat("[", 10000) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The messages as DecodeMessage reads them, line by line.
		var want []string
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			m, err := DecodeMessage(line)
			if err != nil {
				break
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("a decoded message does not encode: %v", err)
			}
			if again, err := DecodeMessage(b); err != nil {
				t.Fatalf("a decoded message, encoded, does not decode: %v", err)
			} else if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
				t.Fatalf("a message does not encode back to itself:\n%s\n%s", b, b2)
			}
			if m.Closed != "" {
				break
			}
			tok := m.Changes
			if m.Reply != nil {
				tok = m.Reply.Changes
			}
			if tok != "" {
				want = append(want, tok)
			}
			if t, ok := ParseToken(tok); ok {
				_ = t.Changed(Token{}, Namespaces)
			}
		}

		// The stream's reader, as the agent runs it.
		var got []string
		s := newStream(fakeConn{bytes.NewReader(data)})
		s.read(Handlers{Change: func(tok string) { got = append(got, tok) }})
		select {
		case <-s.done:
		default:
			t.Fatal("the reader returned without closing done")
		}
		if s.err == nil {
			t.Fatal("the reader ended without saying why")
		}
		// Lines longer than MaxMessage end the stream early; otherwise the
		// reader hands on every token the lines carry, in order.
		if len(got) > len(want) {
			t.Fatalf("the reader handed on %d tokens, more than the %d the messages carry", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("token %d: handed on %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// FuzzParseToken reads change tokens as the agent does from the hub's
// messages: what parses prints back to a token that parses to the same.
func FuzzParseToken(f *testing.F) {
	for _, seed := range []string{
		Token{Epoch: "a1b2c3", Revs: [kinds]uint64{3, 4}, Policies: "77"}.String(),
		"e.0.0.", "e.1.2.3", ".1.2.3", "e.1.2", "e.1.2.3.4", "e.-1.2.", "e.+1.2.", "e.18446744073709551616.0.",
		"e.01.2.", "e. 1.2.", "", ".", "...", "e.1_0.2.", "e.0x1.2.", "\xff.1.2.\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, ok := ParseToken(s)
		if !ok {
			if tok != (Token{}) {
				t.Fatalf("a refused token came with a value: %+v", tok)
			}
			return
		}
		again, ok := ParseToken(tok.String())
		if !ok || again != tok {
			t.Fatalf("%q parses to %+v, which prints as %q and parses to %+v (%v)", s, tok, tok.String(), again, ok)
		}
		if tok.Changed(again, Namespaces) || tok.Changed(again, Policies) {
			t.Fatalf("a token changed from itself: %+v", tok)
		}
	})
}
