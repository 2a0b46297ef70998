package poll_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/testkit/poll"
)

// Until tries until the condition holds, and no more.
func TestUntilStopsWhenTheConditionHolds(t *testing.T) {
	tries := 0
	err := poll.Within(time.Minute, time.Millisecond, func() error {
		if tries++; tries < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Fatalf("Within: %v after %d tries, want nil after 3", err, tries)
	}
}

// A condition that never holds is tried until the time is up, and its last
// error is the answer.
func TestWithinGivesTheLastErrorAtTheDeadline(t *testing.T) {
	tries := 0
	start := time.Now()
	err := poll.Within(50*time.Millisecond, 10*time.Millisecond, func() error {
		tries++
		return fmt.Errorf("try %d", tries)
	})
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the 50ms deadline", took)
	}
	if want := fmt.Sprintf("try %d", tries); err == nil || err.Error() != want || tries < 2 {
		t.Errorf("Within: %v after %d tries, want %q and more than one try", err, tries, want)
	}
}

// Canceling the context ends the wait at once, without waiting out the
// interval.
func TestUntilEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := poll.Until(ctx, time.Hour, func() error { return errors.New("never") })
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("Until: %v after %v, want the condition's error soon after the cancel", err, time.Since(start))
	}
}
