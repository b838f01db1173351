package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Outcome is what the hub's end of a stream does after reading one report.
type Outcome int

const (
	// ReportRead: a report, to check and take.
	ReportRead Outcome = iota
	// ReportBad: JSON, read whole, but not a report (an unparsable
	// quantity, a string for a number): refuse it and read the next.
	ReportBad
	// StreamUnreadable: the stream cannot be read past what came (not
	// JSON, or a report over MaxReport): refuse it and end the stream.
	StreamUnreadable
	// StreamEnded: the connection ended or broke.
	StreamEnded
)

// DecodeReport is how the hub reads one report from r, at most MaxReport
// bytes of it. It has no side effect but reading r: the decoder it returns
// holds in its buffer what was read past the report.
func DecodeReport(r io.Reader) (Report, *json.Decoder, Outcome, error) {
	in := &capped{r: r, max: MaxReport}
	dec := json.NewDecoder(in)
	var raw json.RawMessage
	err := dec.Decode(&raw)
	var syntax *json.SyntaxError
	switch {
	case err == nil:
	case errors.As(err, &syntax) || errors.Is(err, errTooLarge):
		return Report{}, dec, StreamUnreadable, err
	case in.err != nil:
		return Report{}, dec, StreamEnded, err
	default:
		return Report{}, dec, ReportBad, err
	}
	// Quantities are checked before they are parsed: parsing
	// "1e-999999999" takes a core for minutes.
	if err := json.Unmarshal(raw, new(reportQuantities)); err != nil {
		return Report{}, dec, ReportBad, err
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return Report{}, dec, ReportBad, err
	}
	return rep, dec, ReportRead, nil
}

// reportQuantities are a report's quantities, matched to its JSON as
// Report's are (names in any case, every duplicate), each checked by
// quantityCheck before Report's own decoding parses it.
type reportQuantities struct {
	Capacity    resourceQuantities `json:"capacity"`
	Allocatable resourceQuantities `json:"allocatable"`
}

type resourceQuantities struct {
	CPU    quantityCheck `json:"cpu"`
	Memory quantityCheck `json:"memory"`
}

// maxQuantity bounds a quantity's text: a node's capacity needs a dozen
// characters.
const maxQuantity = 64

// quantityCheck refuses the quantities whose parsing costs more than a
// report may: long ones, and those with a decimal exponent of more than 3
// digits, which resource.ParseQuantity rounds at a cost growing with the
// exponent.
type quantityCheck struct{}

func (quantityCheck) UnmarshalJSON(b []byte) error {
	var q string
	if err := json.Unmarshal(b, &q); err != nil {
		return nil // not a string: Report's decoding refuses it
	}
	if len(q) > maxQuantity {
		return fmt.Errorf("quantity %.20q... is longer than %d characters", q, maxQuantity)
	}
	// The suffix: a unit (Ki, m) or a decimal exponent (e3, E-9).
	suffix := strings.TrimLeft(q, "+-.0123456789")
	digits := 0
	for _, c := range suffix {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits > 3 {
		return fmt.Errorf("quantity %q has an exponent of more than 3 digits", q)
	}
	return nil
}

// ClaimRefusal says why a report read on cluster's stream, after one
// numbered last (0 for none, or an agent that does not number them), is
// refused, or "" if it is taken. A report naming another cluster is not
// this identity's to make; one numbered at or below the last taken was
// taken already: a frame replayed into the stream. Reports of agents that
// predate the fields (no cluster, no number) are taken as they were, but
// a stream that numbers its reports numbers them all.
func ClaimRefusal(cluster string, last uint64, rep *Report) string {
	switch {
	case rep.Cluster != "" && rep.Cluster != cluster:
		return fmt.Sprintf("the report claims cluster %q, but this stream's certificate is cluster %q's: an identity reports only for its own cluster", rep.Cluster, cluster)
	case rep.Seq == 0 && last != 0:
		return fmt.Sprintf("the report is not numbered, but this stream's reports are (the last taken was %d): a stream numbers all its reports or none", last)
	case rep.Seq != 0 && rep.Seq <= last:
		return fmt.Sprintf("the report is numbered %d, not above %d, the last this stream took: a replayed report", rep.Seq, last)
	}
	return ""
}

var errTooLarge = errors.New("report larger than 64 KiB")

// capped fails reads past max bytes: a report that never ends must not grow
// the decoder's buffer without bound.
type capped struct {
	r      io.Reader
	n, max int64
	err    error // the read error the reader returned, if any
}

func (c *capped) Read(p []byte) (int, error) {
	if c.n >= c.max {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	if err != nil {
		c.err = err
	}
	return k, err
}
