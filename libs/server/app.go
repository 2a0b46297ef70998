// Package server is the HTTP bootstrap every moviebag service shares: a Fiber
// application whose every failure is the apierr envelope, request ids,
// metrics, access logs and request deadlines, an admin listener for
// /metrics, /healthz and /readyz, and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/requestid"
)

const requestIDKey = "moviebag.request_id"

// New returns a Fiber application for service with the shared error handler
// and middleware installed; the caller adds its routes.
func New(service string, cfg Config, logger *slog.Logger, m *metrics.Metrics) *fiber.App {
	handleError := ErrorHandler(logger, m)
	app := fiber.New(fiber.Config{
		AppName:      service,
		ErrorHandler: handleError,
		// The server itself refuses only bodies past a hard cap, closing the
		// connection; bodies over BODY_LIMIT_BYTES but under the cap are read
		// and refused by observe, so the client reliably gets its 413 on a
		// connection that stays usable (a close with unread data resets it).
		BodyLimit:             max(cfg.BodyLimitBytes, hardBodyCap),
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		CaseSensitive:         true,
	})
	app.Use(observe(logger, m, handleError, cfg))
	answerUnknownMethods(app, handleError)
	return app
}

// answerUnknownMethods makes a request with a method Fiber does not know
// (which Fiber itself answers with a plain-text 400) a 405 envelope too.
func answerUnknownMethods(app *fiber.App, handleError fiber.ErrorHandler) {
	known := app.Config().RequestMethods
	next := app.Server().Handler
	app.Server().Handler = func(rctx *fasthttp.RequestCtx) {
		method := rctx.Method()
		for _, k := range known {
			if string(method) == k { // compared without a copy: this runs on every request
				next(rctx)
				return
			}
		}
		c := app.AcquireCtx(rctx)
		defer app.ReleaseCtx(c)
		_ = handleError(c, fiber.ErrMethodNotAllowed)
	}
}

// RequestID returns the id of the request, resolving (and echoing) it when
// no middleware has yet: Fiber calls the error handler directly for some
// failures, such as a body over the limit.
func RequestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(requestIDKey).(string); ok {
		return id
	}
	id := requestid.Resolve(c.Get(requestid.Header))
	c.Locals(requestIDKey, id)
	c.Set(requestid.Header, id)
	return id
}

// hardBodyCap is the largest body the server reads at all.
const hardBodyCap = 1 << 20

// Causes of requests refused before routing.
var (
	errOverloaded = errors.New("MAX_CONCURRENT_REQUESTS reached: request shed")
	errTooLarge   = errors.New("body over BODY_LIMIT_BYTES")
)

// observe is the outermost middleware: request id, in-flight gauge and
// concurrency limit, a deadline on the request context, panic recovery, the
// error envelope, the request metrics and the access log.
func observe(logger *slog.Logger, m *metrics.Metrics, handleError fiber.ErrorHandler, cfg Config) fiber.Handler {
	var slots chan struct{}
	if cfg.MaxConcurrentRequests > 0 {
		slots = make(chan struct{}, cfg.MaxConcurrentRequests)
	}
	timeout, bodyLimit := cfg.RequestTimeout, cfg.BodyLimitBytes
	return func(c *fiber.Ctx) error {
		start := time.Now()
		id := RequestID(c)
		m.InFlight.Inc()
		defer m.InFlight.Dec()

		ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
		defer cancel()
		c.SetUserContext(ctx)

		var err error
		switch {
		case bodyLimit > 0 && len(c.Request().Body()) > bodyLimit:
			err = apierr.Wrap(apierr.PayloadTooLargeError, errTooLarge)
		case acquire(slots):
			err = safeNext(c)
			release(slots)
		default:
			err = apierr.Unavailable(errOverloaded)
		}
		route := c.Route().Path
		if err != nil {
			switch {
			case unmatched(err):
				route = metrics.UnmatchedRoute
			case errors.Is(err, errOverloaded), errors.Is(err, errTooLarge):
				route = metrics.RejectedRoute
			}
			if herr := handleError(c, err); herr != nil {
				logger.Error("error handler failed", "request_id", id, "error", herr)
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		elapsed := time.Since(start)
		method := methodLabel(c.Method())
		m.Requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		m.Duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		logger.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
			slog.Int("status", status), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
		return nil
	}
}

// acquire takes a slot without waiting; a nil channel means no limit.
func acquire(slots chan struct{}) bool {
	if slots == nil {
		return true
	}
	select {
	case slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func release(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}

// methodLabel returns a constant for the standard methods (Fiber's strings
// point into buffers it reuses, and a label value outlives the request) and
// one value for anything else, so labels stay bounded.
func methodLabel(m string) string {
	switch m {
	case fiber.MethodGet:
		return fiber.MethodGet
	case fiber.MethodHead:
		return fiber.MethodHead
	case fiber.MethodPost:
		return fiber.MethodPost
	case fiber.MethodPut:
		return fiber.MethodPut
	case fiber.MethodPatch:
		return fiber.MethodPatch
	case fiber.MethodDelete:
		return fiber.MethodDelete
	case fiber.MethodOptions:
		return fiber.MethodOptions
	}
	return "OTHER"
}

// safeNext runs the rest of the chain, turning a panic into an
// InternalServerError that carries the stack for the log.
func safeNext(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = apierr.Wrap(apierr.InternalServerError, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return c.Next()
}

// unmatched reports whether err is Fiber's answer to a request that matched
// no route (404) or only routes of other methods (405). Our handlers never
// return *fiber.Error, so these come from the router alone.
func unmatched(err error) bool {
	var fe *fiber.Error
	return errors.As(err, &fe) && (fe.Code == fiber.StatusNotFound || fe.Code == fiber.StatusMethodNotAllowed)
}

// ErrorHandler renders every failure as the apierr envelope: our errors as
// they are, Fiber's (404, 405, 413, ...) by status, anything else as an
// InternalServerError whose cause goes to the log only.
func ErrorHandler(logger *slog.Logger, m *metrics.Metrics) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := toAPIError(c, err)
		id := RequestID(c)
		if e.Status() >= fiber.StatusInternalServerError {
			logger.Error("request failed", "request_id", id, "code", string(e.Code), "method", c.Method(),
				"path", c.Path(), "error", e.Error())
		}
		m.Errors.WithLabelValues(string(e.Code), strconv.Itoa(e.Status())).Inc()
		for k, v := range e.Headers() {
			c.Set(k, strings.Join(v, ", "))
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Status(e.Status()).Send(e.Envelope(id).Marshal())
	}
}

func toAPIError(c *fiber.Ctx, err error) *apierr.Error {
	var fe *fiber.Error
	if !errors.As(err, &fe) {
		return apierr.As(err)
	}
	e := apierr.FromStatus(fe.Code)
	e.Cause = err
	switch fe.Code {
	case fiber.StatusMethodNotAllowed:
		e.Allow = allowedMethods(c.App(), c.Path())
	case fiber.StatusServiceUnavailable, fiber.StatusTooManyRequests:
		e.RetryAfter = time.Second
	}
	return e
}

// allowedMethods lists the methods with a route matching path, for the Allow
// header of a 405.
func allowedMethods(app *fiber.App, path string) []string {
	var allow []string
	seen := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if seen[r.Method] || !matchTemplate(r.Path, path) {
			continue
		}
		seen[r.Method] = true
		allow = append(allow, r.Method)
	}
	return allow
}

// matchTemplate reports whether path fits a route template made of literal
// segments, :params and a trailing *.
func matchTemplate(template, path string) bool {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	for i, t := range ts {
		if t == "*" {
			return true
		}
		if i >= len(ps) {
			return false
		}
		if !strings.HasPrefix(t, ":") && t != ps[i] {
			return false
		}
		if strings.HasPrefix(t, ":") && ps[i] == "" {
			return false
		}
	}
	return len(ts) == len(ps)
}
