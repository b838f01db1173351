package localplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A version whose components cannot be built makes the component Failed,
// with why: never a silent wait.
func TestBuildThatFailsMarksTheComponentFailed(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", notADir)
	t.Setenv("HOME", notADir)
	b := newBinaries(context.Background())
	c := &component{name: "kube-apiserver-0"}
	deadline := time.Now().Add(10 * time.Second)
	for b.get("v1.36.3", c) == "" && !c.failed() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting: %s", c.message)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !c.failed() || !strings.Contains(c.message, "no binary for Kubernetes v1.36.3") {
		t.Fatalf("failed=%v message=%q", c.failed(), c.message)
	}
}
