package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/sets"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

const (
	// auditLog is the hub's audit log, relative to its data dir.
	auditLog = "logs/audit.log"
	// auditBackupTime is how kube-apiserver's log rotation stamps the files
	// it rotates audit.log into: audit-TIME.log, or .log.gz compressed.
	auditBackupTime = "2006-01-02T15-04-05.000"
)

type auditOptions struct {
	dataDir string
	format  string
	filter  auditFilter
	since   time.Duration
}

// newAuditCmd is `flotilla audit`.
func newAuditCmd() *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the requests people made to clusters through the hub",
		Long: `Show the requests that reached member clusters through the hub's access point, from
the hub's audit log: who (the impersonated user, if any), which cluster, and what
the request did there, with its response code and latency.

Run it on the hub's host: it reads DATA_DIR/logs/audit.log and the files the hub
rotated it into, in the same directory, oldest first.

  flotilla audit --cluster prod-eu --since 1h
  flotilla audit --user alice -o json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.format != "table" && o.format != "json" {
				return fmt.Errorf("unknown output format %q; use -o table|json", o.format)
			}
			if o.since < 0 {
				return fmt.Errorf("--since %s is negative; give how far back to look, e.g. 1h", o.since)
			}
			if o.since > 0 {
				o.filter.since = time.Now().Add(-o.since)
			}
			rows, err := readAuditDir(o.dataDir, o.filter, c.ErrOrStderr())
			if err != nil {
				return err
			}
			return printAudit(c.OutOrStdout(), o.format, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", ".flotilla/hub", "the hub's data directory")
	f.StringVar(&o.filter.cluster, "cluster", "", "only requests to this cluster")
	f.StringVar(&o.filter.user, "user", "", "only requests by this user (the impersonated one, if any)")
	f.DurationVar(&o.since, "since", 0, "only requests received within this long, e.g. 1h (default: all)")
	f.StringVarP(&o.format, "output", "o", "table", "output format: table, or json (one object per line)")
	return cmd
}

// auditRow is one request to a member cluster, as the hub audited it.
type auditRow struct {
	Time time.Time `json:"time"`
	// User and Groups are whom the request acted as: the impersonated user
	// if there is one, who then is ImpersonatedBy.
	User           string   `json:"user"`
	Groups         []string `json:"groups"`
	ImpersonatedBy string   `json:"impersonatedBy,omitempty"`
	Cluster        string   `json:"cluster"`
	// Verb, Resource, Namespace and Name are the member cluster's view of
	// the request; Resource is resource[.group][/subresource], or the path
	// of a non-resource request.
	Verb      string        `json:"verb"`
	Resource  string        `json:"resource"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name,omitempty"`
	Code      int32         `json:"code,omitempty"`
	Latency   time.Duration `json:"-"`
	AuditID   string        `json:"auditID"`
}

// auditFilter keeps rows of one cluster, one user and since a time; zero
// values keep all.
type auditFilter struct {
	cluster, user string
	since         time.Time
}

func (f auditFilter) keep(r auditRow) bool {
	return (f.cluster == "" || r.Cluster == f.cluster) &&
		(f.user == "" || r.User == f.user) &&
		(f.since.IsZero() || !r.Time.Before(f.since))
}

// memberRequests parses paths below the access point as a member
// apiserver does.
var memberRequests = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// eventRow turns a completed request to a cluster's access point into a
// row; any other event gives false.
func eventRow(ev *auditv1.Event) (auditRow, bool) {
	ref := ev.ObjectRef
	if ref == nil || ref.APIGroup != fv1.ProxyGroup || ref.Resource != fv1.ProxyResource || ref.Subresource != fv1.ProxySubresource {
		return auditRow{}, false
	}
	if ev.Stage != auditv1.StageResponseComplete && ev.Stage != auditv1.StagePanic {
		return auditRow{}, false
	}
	r := auditRow{
		Time:    ev.RequestReceivedTimestamp.Time,
		User:    ev.User.Username,
		Groups:  ev.User.Groups,
		Cluster: ref.Name,
		AuditID: string(ev.AuditID),
	}
	if imp := ev.ImpersonatedUser; imp != nil {
		r.User, r.Groups, r.ImpersonatedBy = imp.Username, imp.Groups, ev.User.Username
	}
	if ev.ResponseStatus != nil {
		r.Code = ev.ResponseStatus.Code
	}
	if !ev.StageTimestamp.IsZero() && !ev.RequestReceivedTimestamp.IsZero() {
		r.Latency = ev.StageTimestamp.Sub(ev.RequestReceivedTimestamp.Time)
	}
	r.Verb, r.Resource, r.Namespace, r.Name = memberRequest(ev.Verb, ev.RequestURI, ref.Name)
	return r, true
}

// memberRequest says what a request to cluster's access point asked of
// the cluster, from the hub's verb and the URI below the access point.
func memberRequest(hubVerb, requestURI, cluster string) (verb, resource, namespace, name string) {
	u, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return hubVerb, requestURI, "", ""
	}
	path, ok := strings.CutPrefix(u.Path, fv1.ProxyPath(cluster))
	if !ok {
		return hubVerb, u.Path, "", ""
	}
	if path == "" {
		path = "/"
	}
	// The hub audits the verb it derived from the method of a request on a
	// named subresource; the member derives its own from that method.
	req := &http.Request{Method: httpMethod(hubVerb), URL: &url.URL{Path: path, RawQuery: u.RawQuery}}
	info, _ := memberRequests.NewRequestInfo(req) // on error, info holds what was parsed
	if info == nil || !info.IsResourceRequest {
		return strings.ToLower(req.Method), path, "", ""
	}
	resource = info.Resource
	if info.APIGroup != "" {
		resource += "." + info.APIGroup
	}
	if info.Subresource != "" {
		resource += "/" + info.Subresource
	}
	return info.Verb, resource, info.Namespace, info.Name
}

// httpMethod is the method behind an apiserver's verb for a request.
func httpMethod(verb string) string {
	switch verb {
	case "get", "list", "watch":
		return http.MethodGet
	case "create":
		return http.MethodPost
	case "update":
		return http.MethodPut
	case "patch":
		return http.MethodPatch
	case "delete", "deletecollection":
		return http.MethodDelete
	}
	return strings.ToUpper(verb)
}

// readAudit appends to rows the rows of the events in r that f keeps and
// returns how many lines were not audit events.
func readAudit(r io.Reader, f auditFilter, rows []auditRow) ([]auditRow, int, error) {
	br := bufio.NewReader(r)
	malformed := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var ev auditv1.Event
			if jerr := json.Unmarshal(line, &ev); jerr != nil || (ev.Kind != "" && ev.Kind != "Event") {
				malformed++
			} else if row, ok := eventRow(&ev); ok && f.keep(row) {
				rows = append(rows, row)
			}
		}
		if errors.Is(err, io.EOF) {
			return rows, malformed, nil
		}
		if err != nil {
			return rows, malformed, err
		}
	}
}

// auditFiles lists the hub's audit log files in dir, oldest first: the
// rotated ones by the time in their names, then the current one. Rotated
// files that ended before since are left out; found counts them too.
func auditFiles(dir string, since time.Time) (files []string, found int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	base := strings.TrimSuffix(filepath.Base(auditLog), ".log")
	type backup struct {
		name string
		at   time.Time
	}
	var backups []backup
	current := ""
	for _, e := range entries {
		n := e.Name()
		if n == filepath.Base(auditLog) {
			current, found = n, found+1
			continue
		}
		stamp, ok := strings.CutPrefix(n, base+"-")
		if !ok {
			continue
		}
		stamp, ok = strings.CutSuffix(strings.TrimSuffix(stamp, ".gz"), ".log")
		if !ok {
			continue
		}
		at, err := time.Parse(auditBackupTime, stamp)
		if err != nil {
			continue
		}
		found++
		// Stamps are UTC unless the rotation is set to local time; a day's
		// margin keeps a file whose stamp is local.
		if !since.IsZero() && at.Before(since.Add(-24*time.Hour)) {
			continue
		}
		backups = append(backups, backup{n, at})
	}
	sort.Slice(backups, func(i, j int) bool { return backups[i].at.Before(backups[j].at) })
	for _, b := range backups {
		files = append(files, filepath.Join(dir, b.name))
	}
	if current != "" {
		files = append(files, filepath.Join(dir, current))
	}
	return files, found, nil
}

// readAuditDir reads the audit log under the hub data dir dataDir and
// reports malformed lines on warn.
func readAuditDir(dataDir string, f auditFilter, warn io.Writer) ([]auditRow, error) {
	dir := filepath.Join(dataDir, filepath.Dir(auditLog))
	files, found, err := auditFiles(dir, f.since)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read the hub's audit logs in %s: %v", dir, err)
	}
	if found == 0 {
		return nil, fmt.Errorf("no audit log at %s; run this on the hub's host and pass the hub's --data-dir", filepath.Join(dataDir, auditLog))
	}
	var rows []auditRow
	for _, file := range files {
		var n int
		rows, n, err = readAuditFile(file, f, rows)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %v", file, err)
		}
		if n > 0 {
			fmt.Fprintf(warn, "warning: skipped %d malformed line(s) in %s\n", n, file)
		}
	}
	return rows, nil
}

func readAuditFile(file string, f auditFilter, rows []auditRow) ([]auditRow, int, error) {
	fh, err := os.Open(file)
	if err != nil {
		return rows, 0, err
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(file, ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return rows, 0, err
		}
		defer gz.Close()
		r = gz
	}
	return readAudit(r, f, rows)
}

// printAudit writes rows as a table or as one JSON object per line.
func printAudit(w io.Writer, format string, rows []auditRow) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if r.Groups == nil {
				r.Groups = []string{}
			}
			if err := enc.Encode(struct {
				auditRow
				Latency string `json:"latency"`
			}{r, r.Latency.String()}); err != nil {
				return err
			}
		}
		return nil
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		code := "-"
		if r.Code != 0 {
			code = strconv.Itoa(int(r.Code))
		}
		out[i] = []string{r.Time.UTC().Format(time.RFC3339), cell(r.User), cell(strings.Join(r.Groups, ",")), r.Cluster,
			cell(r.Verb), cell(r.Resource), cell(r.Namespace), cell(r.Name), code, latency(r.Latency)}
	}
	return table(w, []string{"TIME", "USER", "GROUPS", "CLUSTER", "VERB", "RESOURCE", "NAMESPACE", "NAME", "CODE", "LATENCY"}, out)
}

// latency rounds d to what a person compares at a glance.
func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
