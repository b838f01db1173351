package bench

import (
	"fmt"
	"io"
	"time"
)

// backupResult is what bench backup measured.
type backupResult struct {
	objects, size   int
	fill            time.Duration // creating the objects: the member's write rate
	backup, restore time.Duration // create to done, as a user waits
	items, restored int64
	archive         int64 // bytes
	// The agent's RSS and its anonymous part: before the backup, and the
	// peaks during each.
	idleRSS, backupRSS, restoreRSS [2]int64
}

func printBackup(w io.Writer, r *backupResult) {
	rate := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Fprintf(w, "backup and restore of %d ConfigMaps and Secrets of %d bytes, one namespace:\n", r.objects, r.size)
	fmt.Fprintf(w, "  member apiserver write ceiling: %d creates in %.1fs = %.0f objects/s (32 clients)\n", r.objects, r.fill.Seconds(), rate(int64(r.objects), r.fill))
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	rss := func(m [2]int64) string {
		return fmt.Sprintf("RSS %.1f MiB (anonymous %.1f MiB; the rest is the binary's pages)", mib(m[0]), mib(m[1]))
	}
	fmt.Fprintf(w, "  agent before the backup: %s\n", rss(r.idleRSS))
	fmt.Fprintf(w, "  backup:  %.1fs for %d items (%.0f items/s; target ≤ 10 s), archive %.1f MiB\n", r.backup.Seconds(), r.items, rate(r.items, r.backup), mib(r.archive))
	fmt.Fprintf(w, "           agent peak %s (target ≤ 64 MB)\n", rss(r.backupRSS))
	fmt.Fprintf(w, "  restore: %.1fs for %d items (%.0f items/s; target ≤ 30 s)\n", r.restore.Seconds(), r.restored, rate(r.restored, r.restore))
	fmt.Fprintf(w, "           agent peak %s (target ≤ 64 MB)\n", rss(r.restoreRSS))
}
