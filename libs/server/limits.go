package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"

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

// limitBody refuses a body over limit bytes with a 413. The
// server streams bodies over limit (StreamRequestBody): such a body is read
// to its end and discarded before the answer, up to drain bytes, so that the
// client, or a proxy that streams it through, has sent all of it and can read
// the answer on a connection it keeps. A body declared or found larger than
// that is answered at once and its connection closed (lingeringly).
func limitBody(limit, drain int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := c.Request()
		declared := req.Header.ContentLength() // -1: chunked
		if declared >= 0 && declared <= limit {
			return c.Next() // read whole before the handler (within the server's limit)
		}
		if declared > drain {
			c.Set(fiber.HeaderConnection, "close")
			return apierr.Wrap(apierr.PayloadTooLargeError, errTooLarge)
		}
		stream := req.BodyStream()
		if stream == nil { // not streamed: already read whole
			if len(req.Body()) > limit {
				return apierr.Wrap(apierr.PayloadTooLargeError, errTooLarge)
			}
			return c.Next()
		}
		body, err := io.ReadAll(io.LimitReader(stream, int64(limit)+1))
		if err != nil {
			return readFailed(c, err)
		}
		if len(body) <= limit { // a chunked body within the limit
			req.SetBody(body)
			return c.Next()
		}
		n, err := io.Copy(io.Discard, io.LimitReader(stream, int64(drain)))
		if err != nil {
			return readFailed(c, err)
		}
		if n == int64(drain) { // more is coming: not read through
			c.Set(fiber.HeaderConnection, "close")
		}
		return apierr.Wrap(apierr.PayloadTooLargeError, errTooLarge)
	}
}

// readFailed answers a body that could not be read to its end: a 408 when
// the client was too slow (READ_TIMEOUT), a 400 for a malformed one; the
// connection is closed either way.
func readFailed(c *fiber.Ctx, err error) error {
	c.Set(fiber.HeaderConnection, "close")
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return apierr.Wrap(apierr.RequestTimeoutError, fmt.Errorf("read the body: %w", err))
	}
	return apierr.Wrap(apierr.BadRequestError, fmt.Errorf("read the body: %w", err))
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
			return apierr.Wrap(apierr.ServiceUnavailableError, errOverloaded)
		}
	}
}
