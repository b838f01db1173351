package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

var auditT0 = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

// proxyEvent is a completed request by user to cluster's access point with
// the hub verb and the path below it, received at offset from auditT0.
func proxyEvent(id, user, cluster, verb, below string, offset time.Duration) auditv1.Event {
	return auditv1.Event{
		TypeMeta:                 metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:                    auditv1.LevelMetadata,
		AuditID:                  types.UID(id),
		Stage:                    auditv1.StageResponseComplete,
		RequestURI:               fv1.ProxyPath(cluster) + below,
		Verb:                     verb,
		User:                     authnv1.UserInfo{Username: user, Groups: []string{"team-a", "system:authenticated"}},
		ObjectRef:                &auditv1.ObjectReference{APIGroup: fv1.ProxyGroup, APIVersion: fv1.ProxyVersion, Resource: fv1.ProxyResource, Subresource: fv1.ProxySubresource, Name: cluster},
		ResponseStatus:           &metav1.Status{Code: 200},
		RequestReceivedTimestamp: metav1.NewMicroTime(auditT0.Add(offset)),
		StageTimestamp:           metav1.NewMicroTime(auditT0.Add(offset + 12*time.Millisecond)),
	}
}

func TestEventRow(t *testing.T) {
	impersonated := proxyEvent("imp", "admin", "lab", "update", "/apis/apps/v1/namespaces/web/deployments/shop/scale", 0)
	impersonated.ImpersonatedUser = &authnv1.UserInfo{Username: "bob", Groups: []string{"ops"}}
	received := proxyEvent("rr", "alice", "lab", "get", "/api/v1/pods", 0)
	received.Stage = auditv1.StageRequestReceived
	notProxy := proxyEvent("np", "alice", "lab", "get", "", 0)
	notProxy.ObjectRef = &auditv1.ObjectReference{APIGroup: fv1.GroupVersion.Group, Resource: "clusters", Name: "lab"}
	noRef := proxyEvent("nr", "alice", "lab", "get", "", 0)
	noRef.ObjectRef = nil
	panicked := proxyEvent("p", "alice", "lab", "delete", "/api/v1/namespaces/web/pods/x", 0)
	panicked.Stage, panicked.ResponseStatus = auditv1.StagePanic, nil

	cases := []struct {
		name string
		ev   auditv1.Event
		want *auditRow // nil: not a row
	}{
		{"list pods in all namespaces", proxyEvent("1", "alice", "lab", "get", "/api/v1/pods?limit=500", 0),
			&auditRow{User: "alice", Verb: "list", Resource: "pods"}},
		{"watch in a namespace", proxyEvent("2", "alice", "lab", "get", "/api/v1/namespaces/web/pods?watch=true&resourceVersion=5", 0),
			&auditRow{User: "alice", Verb: "watch", Resource: "pods", Namespace: "web"}},
		{"pod log", proxyEvent("3", "alice", "lab", "get", "/api/v1/namespaces/web/pods/api-0/log?container=app", 0),
			&auditRow{User: "alice", Verb: "get", Resource: "pods/log", Namespace: "web", Name: "api-0"}},
		{"exec", proxyEvent("4", "alice", "lab", "create", "/api/v1/namespaces/web/pods/api-0/exec?command=sh&stdin=true", 0),
			&auditRow{User: "alice", Verb: "create", Resource: "pods/exec", Namespace: "web", Name: "api-0"}},
		// As the member's apiserver sees it: a namespace is in itself.
		{"delete a namespace", proxyEvent("5", "alice", "lab", "delete", "/api/v1/namespaces/web", 0),
			&auditRow{User: "alice", Verb: "delete", Resource: "namespaces", Namespace: "web", Name: "web"}},
		{"patch a cluster-scoped object of a group", proxyEvent("6", "alice", "lab", "patch", "/apis/rbac.authorization.k8s.io/v1/clusterroles/view", 0),
			&auditRow{User: "alice", Verb: "patch", Resource: "clusterroles.rbac.authorization.k8s.io", Name: "view"}},
		{"impersonated scale", impersonated,
			&auditRow{User: "bob", Groups: []string{"ops"}, ImpersonatedBy: "admin", Verb: "update", Resource: "deployments.apps/scale", Namespace: "web", Name: "shop"}},
		{"non-resource", proxyEvent("7", "alice", "lab", "get", "/version", 0),
			&auditRow{User: "alice", Verb: "get", Resource: "/version"}},
		{"the access point itself", proxyEvent("8", "alice", "lab", "get", "", 0),
			&auditRow{User: "alice", Verb: "get", Resource: "/"}},
		{"discovery", proxyEvent("9", "alice", "lab", "get", "/apis/apps/v1", 0),
			&auditRow{User: "alice", Verb: "get", Resource: "/apis/apps/v1"}},
		{"panic", panicked,
			&auditRow{User: "alice", Verb: "delete", Resource: "pods", Namespace: "web", Name: "x"}},
		{"request received only", received, nil},
		{"not the access point", notProxy, nil},
		{"no object", noRef, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := eventRow(&tc.ev)
			if tc.want == nil {
				if ok {
					t.Fatalf("got row %+v, want none", got)
				}
				return
			}
			if !ok {
				t.Fatal("got no row")
			}
			want := *tc.want
			want.Time, want.Cluster, want.AuditID, want.Latency = auditT0, "lab", string(tc.ev.AuditID), 12*time.Millisecond
			if want.Groups == nil {
				want.Groups = []string{"team-a", "system:authenticated"}
			}
			if tc.ev.ResponseStatus != nil {
				want.Code = 200
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestAuditFilter(t *testing.T) {
	row := auditRow{User: "alice", Cluster: "lab", Time: auditT0}
	cases := []struct {
		name string
		f    auditFilter
		keep bool
	}{
		{"no filter", auditFilter{}, true},
		{"cluster", auditFilter{cluster: "lab"}, true},
		{"other cluster", auditFilter{cluster: "prod"}, false},
		{"user", auditFilter{user: "alice"}, true},
		{"other user", auditFilter{user: "bob"}, false},
		{"since before", auditFilter{since: auditT0.Add(-time.Minute)}, true},
		{"since exactly", auditFilter{since: auditT0}, true},
		{"since after", auditFilter{since: auditT0.Add(time.Second)}, false},
		{"all match", auditFilter{cluster: "lab", user: "alice", since: auditT0}, true},
		{"one fails", auditFilter{cluster: "lab", user: "bob"}, false},
	}
	for _, tc := range cases {
		if got := tc.f.keep(row); got != tc.keep {
			t.Errorf("%s: keep = %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// auditLines marshals events one per line, as the hub writes them.
func auditLines(t *testing.T, evs ...auditv1.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestReadAudit(t *testing.T) {
	imp := proxyEvent("imp", "admin", "prod", "get", "/api/v1/pods", 2*time.Minute)
	imp.ImpersonatedUser = &authnv1.UserInfo{Username: "alice"}
	data := auditLines(t,
		proxyEvent("a", "alice", "lab", "get", "/api/v1/pods", 0),
		proxyEvent("b", "bob", "lab", "get", "/api/v1/pods", time.Minute),
		imp,
	)
	data = append(data, "not json\n{\"kind\":\"Event\",\"stage\":\n\n"...)
	data = append(data, `{"kind":"Secret","apiVersion":"v1"}`+"\n"...)
	data = append(data, auditLines(t, proxyEvent("c", "alice", "lab", "get", "/api/v1/nodes", 3*time.Minute))...)
	data = data[:len(data)-1] // the last line may lack its newline

	cases := []struct {
		name string
		f    auditFilter
		ids  []string
	}{
		{"all", auditFilter{}, []string{"a", "b", "imp", "c"}},
		{"impersonated user counts", auditFilter{user: "alice"}, []string{"a", "imp", "c"}},
		{"who impersonated does not", auditFilter{user: "admin"}, nil},
		{"cluster", auditFilter{cluster: "lab"}, []string{"a", "b", "c"}},
		{"since", auditFilter{since: auditT0.Add(90 * time.Second)}, []string{"imp", "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, malformed, err := readAudit(bytes.NewReader(data), tc.f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if malformed != 3 {
				t.Errorf("malformed = %d, want 3", malformed)
			}
			if got := ids(rows); !reflect.DeepEqual(got, tc.ids) {
				t.Errorf("rows %v, want %v", got, tc.ids)
			}
		})
	}
}

// The rotated files are read oldest first, then the current one, and
// rotated files wholly before --since are not read at all.
func TestReadAuditDir(t *testing.T) {
	data := t.TempDir()
	logs := filepath.Join(data, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, content []byte) {
		if err := os.WriteFile(filepath.Join(logs, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("audit-2026-12-01T18-00-00.000.log", auditLines(t, proxyEvent("2", "alice", "lab", "get", "/api/v1/pods", -2*time.Minute)))
	write("audit-2026-11-01T18-00-00.000.log", auditLines(t, proxyEvent("1", "alice", "lab", "get", "/api/v1/pods", -30*24*time.Hour-time.Minute)))
	write("audit.log", append(auditLines(t, proxyEvent("3", "alice", "lab", "get", "/api/v1/pods", time.Minute)), "garbage\n"...))
	write("other.log", []byte("not an audit log\n"))

	var warn bytes.Buffer
	rows, err := readAuditDir(data, auditFilter{}, &warn)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rows); !reflect.DeepEqual(got, []string{"1", "2", "3"}) {
		t.Errorf("rows %v, want 1 2 3", got)
	}
	if !strings.Contains(warn.String(), "skipped 1 malformed line(s) in "+filepath.Join(logs, "audit.log")) {
		t.Errorf("warning %q does not count the malformed line", warn.String())
	}

	files, _, err := auditFiles(logs, auditT0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "audit-2026-12-01T18-00-00.000.log" {
		t.Errorf("files since an hour ago: %v; want the newer rotated one and audit.log", files)
	}

	if _, err := readAuditDir(t.TempDir(), auditFilter{}, &warn); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("no log: err = %v, want one pointing at --data-dir", err)
	}
}

func ids(rows []auditRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.AuditID)
	}
	return out
}

func TestPrintAudit(t *testing.T) {
	row, _ := eventRow(&[]auditv1.Event{proxyEvent("x", "alice", "lab", "get", "/api/v1/namespaces/web/pods/api-0", 0)}[0])
	var b bytes.Buffer
	if err := printAudit(&b, "json", []auditRow{row}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("json output %q: %v", b.String(), err)
	}
	for k, v := range map[string]any{"user": "alice", "cluster": "lab", "verb": "get", "resource": "pods", "namespace": "web", "name": "api-0", "code": 200.0, "latency": "12ms", "time": "2026-12-01T18:00:00Z"} {
		if got[k] != v {
			t.Errorf("json %s = %v, want %v", k, got[k], v)
		}
	}
	b.Reset()
	if err := printAudit(&b, "table", []auditRow{row}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "2026-12-01T18:00:00Z alice team-a,system:authenticated lab get pods web api-0 200 12ms" {
		t.Errorf("table:\n%s", b.String())
	}
}
