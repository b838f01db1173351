package controllers

import (
	"strings"
	"testing"
	"time"
)

func TestBackupName(t *testing.T) {
	tick := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	if got := BackupName("nightly", "prod-eu", tick); got != "nightly-prod-eu-20261202020000" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("c", 55)
	a, b := BackupName(strings.Repeat("s", 40), long, tick), BackupName(strings.Repeat("s", 40), long[:54]+"d", tick)
	if len(a) > 63 || a == b || !strings.HasSuffix(a, "-20261202020000") {
		t.Errorf("long names: %q (%d) and %q", a, len(a), b)
	}
}

func TestParseSchedule(t *testing.T) {
	s, zone, err := ParseSchedule("0 2 * * *", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 02:00 in Berlin in winter is 01:00 UTC.
	next := s.Next(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).In(zone))
	if want := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next %s, want %s", next.UTC(), want)
	}
	if s, _, err := ParseSchedule("@every 90s", ""); err != nil || s.Next(time.Unix(0, 0)).Sub(time.Unix(0, 0)) != 90*time.Second {
		t.Errorf("@every 90s: %v", err)
	}
	for _, bad := range [][2]string{{"61 * * * *", ""}, {"* * *", ""}, {"@daily", "Mars/Olympus"}} {
		if _, _, err := ParseSchedule(bad[0], bad[1]); err == nil {
			t.Errorf("%q in %q: no error", bad[0], bad[1])
		}
	}
}
