package tracker

import (
	"bytes"
	"testing"
)

// What follows a report on the stream is kept for the next one, but the
// newline after each report is not: keeping it cost an allocation per
// report.
func TestAppendUnreadKeepsOnlyWhatFollows(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"\n":                 "",
		" \r\n\t":            "",
		"\n{\"seq\":2}\n":    "{\"seq\":2}\n",
		"{\"seq\":3}":        "{\"seq\":3}",
		"\n{\"seq\":4} \n{}": "{\"seq\":4} \n{}",
	} {
		got := appendUnread([]byte("x"), bytes.NewReader([]byte(in)))
		if string(got) != "x"+want {
			t.Errorf("%q: got %q, want %q", in, got, "x"+want)
		}
	}
}
