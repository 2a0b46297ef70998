package server_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
)

// BenchmarkMiddleware prices each of the shared middleware on its own: a
// Fiber application with only that middleware in front of a route answering
// a fixed body, called in process with a reused fasthttp request (no
// network). "none" is the same application without middleware; the
// difference is what the middleware adds per request on its success path.
// The error handler is priced apart (BenchmarkErrorHandler).
func BenchmarkMiddleware(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry(), "bench")
	warn := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	info := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("service", "bench")
	render := server.ErrorHandler(warn, m)
	cases := []struct {
		name string
		mw   fiber.Handler // nil: none
		body []byte        // a POST with this JSON body when set
	}{
		{"none", nil, nil},
		{"instrument warn", server.Instrument(warn, m, render), nil},
		{"instrument info (access log)", server.Instrument(info, m, render), nil},
		{"recoverPanic", server.RecoverPanic, nil},
		{"limitBody", server.LimitBody(65536, server.DrainLimit), benchJSON},
		{"refuseContentEncoding", server.RefuseContentEncoding, benchJSON},
		{"shed 512", server.Shed(512), nil},
		{"deadline", server.Deadline(5 * time.Second), nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: render})
			if tc.mw != nil {
				app.Use(tc.mw)
			}
			method := fiber.MethodGet
			if tc.body != nil {
				method = fiber.MethodPost
			}
			app.Add(method, "/api/movies/:id", func(c *fiber.Ctx) error {
				c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
				return c.Send(benchJSON)
			})
			serveLoop(b, app.Handler(), method, "/api/movies/6b06f1ebcf512d8be09e8da8", tc.body, fiber.StatusOK)
		})
	}
}

// BenchmarkErrorHandler prices rendering a failure: the catalog error found
// in the chain, its extra headers, moviebag_errors_total and the envelope,
// for a route's error (instrument in front, as in every service) and for
// Fiber's own 404 of an unknown route.
func BenchmarkErrorHandler(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry(), "bench")
	warn := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	render := server.ErrorHandler(warn, m)
	cases := []struct {
		name   string
		err    error
		path   string
		status int
	}{
		{"MovieNotExists", apierr.Wrap(apierr.MovieNotExistsError, errors.New("no documents")), "/fail", 400},
		{"SchemaValidation 3 details", apierr.New(apierr.SchemaValidationError).WithDetails(
			apierr.FieldError{Field: "casts", Issue: "must have at least 1 item"},
			apierr.FieldError{Field: "name", Issue: "must not be blank"},
			apierr.FieldError{Field: "name", Issue: "must have a visible character and no control or invisible characters"},
		), "/fail", 400},
		{"TokenMissing 401", apierr.New(apierr.TokenMissingError), "/fail", 401},
		{"unknown route 404", nil, "/api/nothing/here", 404},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: render})
			app.Use(server.Instrument(warn, m, render))
			app.Get("/fail", func(*fiber.Ctx) error { return tc.err })
			serveLoop(b, app.Handler(), fiber.MethodGet, tc.path, nil, tc.status)
		})
	}
}

// benchJSON is about the size of a movie.
var benchJSON = []byte(`{"id":"6b06f1ebcf512d8be09e8da8","name":"Heat","casts":["Al Pacino","Robert De Niro"],"genres":["Crime"]}`)

// serveLoop serves one request, method path with body (JSON) when set, as
// serveBench does.
func serveLoop(b *testing.B, h fasthttp.RequestHandler, method, path string, body []byte, status int) {
	b.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	if body != nil {
		req.Header.SetContentType(fiber.MIMEApplicationJSON)
		req.SetBody(body)
	}
	serveBench(b, h, &req, status)
}
