package server

import (
	"errors"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
)

// errorHandler renders every failure as the apierr envelope: our errors as
// they are, Fiber's (404, 405, 413, ...) by status, anything else as an
// InternalServerError whose cause goes to the log only. A request the server
// refused before instrument saw it is counted and logged here.
func errorHandler(logger *slog.Logger, m *metrics.Metrics) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := toAPIError(c, err)
		instrumented := c.Locals(instrumentedKey) != nil
		var id string
		if instrumented {
			id = echoedRequestID(c)
		} else {
			id = requestID(c)
		}
		status := e.Status()
		if status >= fiber.StatusInternalServerError {
			logger.Error("request failed", "request_id", id, "code", string(e.Code), "method", c.Method(),
				"path", c.Path(), "error", e.Error())
		}
		m.ErrorEnvelope(e.Code, statusLabel(status))
		e.SetHeaders(c.Set)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Status(status)
		// Encoded on the stack and copied into the response's own buffer:
		// an envelope with a few details fits.
		var buf [1024]byte
		c.Response().SetBody(e.Envelope(id).AppendJSON(buf[:0]))
		if !instrumented {
			record(c, logger, m, id, metrics.RejectedRoute)
		}
		return nil
	}
}

// toAPIError returns the catalog error for err, as a value so that Fiber's
// own errors (an unknown route, a wrong method) cost no allocation.
func toAPIError(c *fiber.Ctx, err error) apierr.Error {
	fe, ok := errors.AsType[*fiber.Error](err)
	if !ok {
		return *apierr.FromError(err)
	}
	code := fe.Code
	var allow []string
	if code == fiber.StatusMethodNotAllowed {
		// A method no route of any path has (FOO, PROPFIND) on a path no
		// route has is an unknown path: 404, as the gateway answers. So a
		// 405 always names the methods in its Allow header.
		if allow = allowedMethods(c.App(), c.Path()); len(allow) == 0 {
			code = fiber.StatusNotFound
		}
	}
	e := *apierr.FromStatus(code)
	e.Cause = err
	if code == fiber.StatusMethodNotAllowed {
		e.Allow = allow
	}
	return e
}

// allowedMethods lists the methods with a route matching path, for the Allow
// header of a 405, matching as Fiber's router does.
func allowedMethods(app *fiber.App, path string) []string {
	var allow []string
	seen := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if seen[r.Method] || !fiber.RoutePatternMatch(path, r.Path, app.Config()) {
			continue
		}
		seen[r.Method] = true
		allow = append(allow, r.Method)
	}
	return allow
}
