package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// outputFormats are the values of -o.
var outputFormats = []string{"table", "yaml", "json"}

// checkOutput rejects an unknown -o before any request is made.
func checkOutput(format string) error {
	for _, f := range outputFormats {
		if format == f {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q; use -o %s", format, strings.Join(outputFormats, "|"))
}

// printObjects writes objs as YAML or JSON that `kubectl apply -f` accepts:
// one object as itself, several as a v1 List, as kubectl get prints them.
// The resource version and managed fields are dropped: they are the
// apiserver's bookkeeping, a stale version (status changes with every
// heartbeat) makes apply conflict, and server-side apply refuses managed fields.
func printObjects[T any, P interface {
	*T
	metav1.Object
}](w io.Writer, format string, single bool, objs []T) error {
	items := make([]any, len(objs))
	for i := range objs {
		P(&objs[i]).SetManagedFields(nil)
		P(&objs[i]).SetResourceVersion("")
		items[i] = &objs[i]
	}
	var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
	if single && len(items) == 1 {
		v = items[0]
	}
	var out []byte
	var err error
	if format == "json" {
		out, err = json.MarshalIndent(v, "", "  ")
		out = append(out, '\n')
	} else {
		out, err = yaml.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// table writes rows under header, aligned like kubectl's tables.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// age is how long ago t was, as kubectl shows it.
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// cell keeps free text on one line of the table and not too wide.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}
