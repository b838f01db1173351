package backoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestUntilGoesOnPastTheCap(t *testing.T) {
	b := wait.Backoff{Duration: time.Millisecond, Factor: 2, Cap: 4 * time.Millisecond}
	calls := 0
	err := Until(context.Background(), b, func(context.Context) (bool, error) {
		calls++
		return calls == 10, nil
	})
	if err != nil || calls != 10 {
		t.Fatalf("gave up after %d calls: %v", calls, err)
	}
}

func TestUntilEndsOnErrorOrContext(t *testing.T) {
	b := wait.Backoff{Duration: time.Millisecond, Factor: 2, Cap: 4 * time.Millisecond}
	refused := errors.New("refused for good")
	if err := Until(context.Background(), b, func(context.Context) (bool, error) { return false, refused }); err != refused {
		t.Fatalf("a failure for good: got %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Until(ctx, b, func(context.Context) (bool, error) { return false, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a context that ended: got %v", err)
	}
}
