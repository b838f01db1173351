package bench

import (
	"fmt"
	"io"
	"time"
)

// backupResult is what bench backup measured.
type backupResult struct {
	objects, size         int
	fill                  time.Duration // creating the objects: the member's write rate
	backup, restore       time.Duration // create to done, as a user waits
	items, restored       int64
	archive               int64 // bytes
	backupRSS, restoreRSS int64 // the agent's peak during each
}

func printBackup(w io.Writer, r *backupResult) {
	rate := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Fprintf(w, "backup and restore of %d ConfigMaps and Secrets of %d bytes, one namespace:\n", r.objects, r.size)
	fmt.Fprintf(w, "  member apiserver write ceiling: %d creates in %.1fs = %.0f objects/s (32 clients)\n", r.objects, r.fill.Seconds(), rate(int64(r.objects), r.fill))
	fmt.Fprintf(w, "  backup:  %.1fs for %d items (%.0f items/s; target ≤ 10 s), agent peak RSS %.1f MiB (target ≤ 64 MB), archive %.1f MiB\n",
		r.backup.Seconds(), r.items, rate(r.items, r.backup), float64(r.backupRSS)/(1<<20), float64(r.archive)/(1<<20))
	fmt.Fprintf(w, "  restore: %.1fs for %d items (%.0f items/s; target ≤ 30 s), agent peak RSS %.1f MiB (target ≤ 64 MB)\n",
		r.restore.Seconds(), r.restored, rate(r.restored, r.restore), float64(r.restoreRSS)/(1<<20))
}
