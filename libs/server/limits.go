package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/apierr"
)

// Causes of requests refused before routing.
var (
	errOverloaded = errors.New("MAX_CONCURRENT_REQUESTS reached: request shed")
	errTooLarge   = errors.New("body over BODY_LIMIT_BYTES")
)

// recoverPanic turns a panic in the rest of the chain into an
// InternalServerError that carries the stack for the log.
func recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = apierr.Wrap(apierr.InternalServerError, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return c.Next()
}

// limitBody refuses a body over limit bytes (0: no limit) with a 413.
func limitBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if limit > 0 && len(c.Request().Body()) > limit {
			return apierr.Wrap(apierr.PayloadTooLargeError, errTooLarge)
		}
		return c.Next()
	}
}

// shed lets at most limit requests run at once (0: no limit) and answers
// the others at once with a 503, instead of letting latency grow.
func shed(limit int) fiber.Handler {
	if limit <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	slots := make(chan struct{}, limit)
	return func(c *fiber.Ctx) error {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			return c.Next()
		default:
			return apierr.Unavailable(errOverloaded)
		}
	}
}

// deadline gives the request's context (c.UserContext(), which every
// storage call uses) a deadline timeout from now.
func deadline(timeout time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
}
