// Package poll is the one loop by which tests wait for a condition: they try
// it at an interval until it holds, instead of sleeping for a guessed time.
// testkit's Eventually and Poll are built on it; it needs nothing beyond
// the standard library, so that the checks of deploy/ (modules that do not
// take testkit's dependencies) wait the same way.
package poll

import (
	"context"
	"time"
)

// Until calls cond every interval until it returns nil or ctx is done, and
// returns cond's last error (nil once it held). When ctx ends during a wait,
// cond is tried once more, so a condition that holds at the deadline counts.
func Until(ctx context.Context, interval time.Duration, cond func() error) error {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil || ctx.Err() != nil {
			return err
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
}

// Within is Until with a deadline timeout from now.
func Within(timeout, interval time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Until(ctx, interval, cond)
}
