package heartbeat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// The claims a report makes are checked against the stream's identity and
// the reports it took before.
func TestClaimRefusal(t *testing.T) {
	cases := []struct {
		name    string
		last    uint64
		rep     Report
		refused string
	}{
		{"an agent that predates the fields", 0, Report{}, ""},
		{"its own cluster, numbered", 0, Report{Cluster: "c1", Seq: 1}, ""},
		{"the next number", 4, Report{Cluster: "c1", Seq: 5}, ""},
		{"numbers may skip", 4, Report{Seq: 9}, ""},
		{"another cluster", 0, Report{Cluster: "c2", Seq: 1}, `claims cluster "c2", but this stream's certificate is cluster "c1"'s`},
		{"replayed", 5, Report{Cluster: "c1", Seq: 5}, "numbered 5, not above 5"},
		{"older", 5, Report{Cluster: "c1", Seq: 2}, "a replayed report"},
		{"unnumbered after numbered", 5, Report{Cluster: "c1"}, "numbers all its reports or none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ClaimRefusal("c1", tc.last, &tc.rep)
			if tc.refused == "" && got != "" || !strings.Contains(got, tc.refused) {
				t.Errorf("ClaimRefusal = %q; want %q", got, tc.refused)
			}
		})
	}
}

// A quantity whose parsing would take the hub's core for minutes is refused
// before it is parsed, under any spelling of its field's name, and the
// stream goes on.
func TestDecodeReportRefusesCostlyQuantities(t *testing.T) {
	for _, in := range []string{
		`{"capacity":{"cpu":"1e-999999999"}}`,
		`{"allocatable":{"memory":"1E-999999999"}}`,
		`{"capacity":{"cpu":"1","CPU":"1e-999999999"}}`,
		`{"Capacity":{"cpu":"1e-0000000999999999"}}`,
		`{"capacity":{"cpu":"` + strings.Repeat("1", 100) + `"}}`,
	} {
		start := time.Now()
		_, _, next, err := DecodeReport(strings.NewReader(in + "\n"))
		if next != ReportBad || err == nil || !strings.Contains(err.Error(), "quantity") {
			t.Errorf("%s: outcome %d, %v; want it refused as a bad report naming the quantity", in, next, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %s", in, d)
		}
	}
	rep, _, next, err := DecodeReport(strings.NewReader(`{"capacity":{"cpu":"4","memory":"16Gi"},"allocatable":{"cpu":"3500m","memory":"1.5e3"}}`))
	if next != ReportRead || err != nil || rep.Capacity.CPU.String() != "4" {
		t.Errorf("a report of ordinary quantities: outcome %d, %v, %+v", next, err, rep.Capacity)
	}
}

// FuzzDecodeReport reads what an agent (or anyone holding its identity)
// writes on a stream, report after report as the stream does, carrying
// what was read past each to the next. Whatever the bytes, it must not
// panic, must make progress or end the stream, must not read more than
// MaxReport for one report, and what it takes must be a report the hub can
// observe and that encodes back to itself.
func FuzzDecodeReport(f *testing.F) {
	good, _ := json.Marshal(Report{IntervalSeconds: 10, Reachable: true, Pods: 3, Cluster: "c1", Seq: 1,
		Failing: []string{"etcd: down"}, Policies: &fv1.ClusterPolicyStatus{Synced: "True", Insights: []fv1.Insight{{Kind: fv1.InsightViolation, Namespace: "a", Object: "Pod/p", Message: "m"}}}})
	for _, seed := range []string{
		string(good) + "\n",
		string(good) + "\n" + string(good) + "\n",
		`{"intervalSeconds":10,"reachable":true}` + "\n" + `{"intervalSeconds":10,"reachable":true,"seq":2}`,
		`{"intervalSeconds":10,"reachable":true,"capacity":{"cpu":"lots"}}` + "\n" + `{"pods":1}`,
		`{"capacity":{"cpu":"1e999999999","memory":"9999999999999999999999Ei"},"allocatable":{"cpu":"-1m"}}`,
		`{"capacity":{"cpu":"1e-99"},"allocatable":{"Memory":"1E","memory":"1e-999"}}`,
		`{"cluster":"c2","seq":1}{"cluster":"c1","seq":1}{"cluster":"c1","seq":1}`,
		`{"seq":18446744073709551615}{"seq":1}`,
		`{"seq":-1}`, `{"seq":1.5}`, `{"intervalSeconds":1e30}`, `{"intervalSeconds":-9223372036854775808}`,
		`null`, `[]`, `"report"`, `5`, `{`, `}`, `{"pods":1}}`, "\x00", "\xff\xfe", `{"failing":["\ud800"]}`,
		`{"policies":{"audited":{"p":1e99}}}`, `{"nodes":{"ready":-1,"total":2147483648}}`,
		strings.Repeat("[", 1000), strings.Repeat(" ", MaxReport+1) + "{}",
		`{"failing":["` + strings.Repeat("x", MaxReport) + `"]}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		// An input that takes seconds is a hub core an agent can hold:
		// crash, so the fuzzer keeps the input.
		defer time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("a report took over 5 s to take: %q", data)) }).Stop()
		conn := bytes.NewReader(data)
		var pending []byte
		var last uint64
		for {
			before := len(pending) + conn.Len()
			pr := bytes.NewReader(pending)
			in := &countingReader{r: io.MultiReader(pr, conn)}
			rep, dec, next, err := DecodeReport(in)
			if in.n > MaxReport {
				t.Fatalf("read %d bytes for one report, more than MaxReport", in.n)
			}
			if next == StreamUnreadable || next == StreamEnded {
				if err == nil {
					t.Fatalf("outcome %d without an error", next)
				}
				return
			}
			pending, _ = io.ReadAll(io.MultiReader(dec.Buffered(), pr))
			if after := len(pending) + conn.Len(); after >= before {
				t.Fatalf("a report read nothing: %d bytes before, %d after", before, after)
			}
			if next == ReportBad {
				if err == nil {
					t.Fatal("a bad report without an error")
				}
				continue
			}
			if err != nil {
				t.Fatalf("a report taken with an error: %v", err)
			}
			if d := rep.Interval(); d <= 0 || d > MaxInterval {
				t.Fatalf("interval %s out of range", d)
			}
			Status(now, Observation{Seen: now, Report: &rep}, fv1.ClusterStatus{})
			switch why := ClaimRefusal("c1", last, &rep); {
			case why != "":
				if rep.Cluster == "c1" && rep.Seq > last || rep.Cluster == "" && rep.Seq > last && rep.Seq != 0 {
					t.Fatalf("refused a report that claims nothing wrong (last %d, cluster %q, seq %d): %s", last, rep.Cluster, rep.Seq, why)
				}
			case rep.Cluster != "" && rep.Cluster != "c1", rep.Seq != 0 && rep.Seq <= last, rep.Seq == 0 && last != 0:
				t.Fatalf("took a report claiming cluster %q, seq %d after %d", rep.Cluster, rep.Seq, last)
			default:
				last = rep.Seq
			}
			// What the hub keeps encodes back to itself.
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatalf("a report taken does not encode: %v", err)
			}
			again, _, next2, err := DecodeReport(bytes.NewReader(b))
			if next2 != ReportRead {
				if len(b) > MaxReport {
					continue // a report near the limit may grow when normalised
				}
				t.Fatalf("a taken report, encoded, does not decode (%v): %s", err, b)
			}
			b2, _ := json.Marshal(again)
			if !bytes.Equal(b, b2) {
				t.Fatalf("a taken report does not encode back to itself:\n%s\n%s", b, b2)
			}
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += k
	return k, err
}
