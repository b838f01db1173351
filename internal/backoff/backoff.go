// Package backoff retries an operation until it succeeds, fails for good or
// its context ends, waiting longer after each failure up to a cap.
//
// wait.ExponentialBackoffWithContext looks like that but is not: Backoff.Step
// sets Steps to 0 once the delay reaches its cap, so a loop meant to retry
// for as long as the hub is away gave up after a handful of tries (25 s for
// a 200 ms start doubling to a 10 s cap).
package backoff

import (
	"context"
	"math"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Until calls cond at once, then after each of b's delays (growing by
// b.Factor to b.Cap, then staying there; b.Steps is ignored), until cond
// returns true (nil), an error (that error) or ctx ends (ctx.Err()).
func Until(ctx context.Context, b wait.Backoff, cond wait.ConditionWithContextFunc) error {
	b.Steps = math.MaxInt32
	return b.DelayFunc().Until(ctx, true, false, cond)
}
