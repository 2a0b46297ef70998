package server

import (
	"errors"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/metrics"
)

// instrumentedKey marks a request that instrument saw: its id is resolved
// (echoedRequestID reads it), and the error handler leaves the counting to
// instrument. Requests the server refuses before any middleware (a body over
// the hard cap, headers too large, a read timeout, an unknown method) reach
// only the error handler, which resolves their id and counts them itself.
// One local for both: each is a scan and, when set, an append to the
// request's user values.
const instrumentedKey = "moviebag.instrumented"

// instrument is the outermost middleware: it gives the request its id, keeps
// the in-flight gauge, renders any error of the chain as the envelope, then
// counts the request and writes the access log.
func instrument(logger *slog.Logger, m *metrics.Metrics, render fiber.ErrorHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := requestID(c)
		c.Locals(instrumentedKey, true)
		m.InFlight.Inc()
		defer m.InFlight.Dec()

		err := c.Next()
		route := c.Route().Path
		if err != nil {
			route = errorRoute(err, route)
			if herr := render(c, err); herr != nil {
				logger.Error("error handler failed", "request_id", id, "error", herr)
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		record(c, logger, m, id, route)
		return nil
	}
}

// record counts an answered request and writes its access-log line. The
// duration runs from when the server began reading the request.
func record(c *fiber.Ctx, logger *slog.Logger, m *metrics.Metrics, id, route string) {
	status := c.Response().StatusCode()
	end := now(c)
	elapsed := end.Sub(c.Context().Time()) // time.Since(c.Context().Time()), the clock read once
	method := methodLabel(c.Method())
	m.RequestAnswered(method, route, statusLabel(status), elapsed.Seconds())
	// Asked first, so that a level that drops the line builds none of it.
	if ctx := c.UserContext(); logger.Enabled(ctx, slog.LevelInfo) {
		// The record logger.LogAttrs would make, but timed with the clock
		// read above (the line's time is when the duration ends) instead of
		// reading it again, without looking up its caller (runtime.Callers,
		// for a source that would always be this line and that NewLogger's
		// handler does not write) and without asking Enabled a second time.
		r := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		r.AddAttrs(slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
			slog.Int("status", status), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
		_ = logger.Handler().Handle(ctx, r)
	}
}

// statusLabels are the status label values of 100 to 599, made once: a label
// per request would otherwise be a new string each time.
var statusLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(100 + i)
	}
	return l
}()

// statusLabel is the status label value of status.
func statusLabel(status int) string {
	if status >= 100 && status < 600 {
		return statusLabels[status-100]
	}
	return strconv.Itoa(status)
}

// errorRoute is the route label of a failed request: one constant for a
// request that matched no route, another for one refused before routing, so
// that raw paths never become label values.
func errorRoute(err error, route string) string {
	fe, ok := errors.AsType[*fiber.Error](err)
	switch {
	case ok && (fe.Code == fiber.StatusNotFound || fe.Code == fiber.StatusMethodNotAllowed):
		// Our handlers never return *fiber.Error: these come from the router.
		return metrics.UnmatchedRoute
	case errors.Is(err, errOverloaded), errors.Is(err, errTooLarge):
		return metrics.RejectedRoute
	}
	return route
}

// methodLabel returns a constant for the standard methods (Fiber's strings
// point into buffers it reuses, and a label value outlives the request) and
// one value for anything else, so labels stay bounded.
func methodLabel(m string) string {
	for _, std := range standardMethods {
		if m == std {
			return std
		}
	}
	return metrics.OtherMethod
}

// standardMethods are the methods methodLabel names.
var standardMethods = [...]string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut,
	fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions,
}
