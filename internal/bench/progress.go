package bench

import (
	"fmt"
	"io"
	"time"
)

// progressLog writes a timestamped line of progress for people to w.
func progressLog(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "  %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}
