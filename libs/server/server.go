// Package server is the HTTP side every moviebag service shares: a Fiber
// application whose every failure is the apierr envelope, its middleware
// (each in a file of its own), the admin listener for /metrics, /healthz and
// /readyz, and serving until shutdown.
package server

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/metrics"
)

// drainLimit is the most of a refused body the server reads and discards
// before it answers 413; past it the connection is closed (lingeringly).
const drainLimit = 16 << 20

// New returns a Fiber application for service with the shared error handler
// and middleware installed; the caller adds its routes.
func New(service string, cfg Config, logger *slog.Logger, m *metrics.Metrics) *fiber.App {
	render := errorHandler(logger, m)
	settings := FiberSettings(cfg)
	settings.AppName = service
	settings.ErrorHandler = render
	app := fiber.New(settings)
	app.Use(
		instrument(logger, m, render), // outermost: sees, renders and counts every outcome
		recoverPanic,
		limitBody(cfg.BodyLimitBytes, drainLimit),
		refuseContentEncoding,
		shed(cfg.MaxConcurrentRequests),
		deadline(cfg.RequestTimeout),
	)
	answerUnknownMethods(app, render)
	return app
}

// FiberSettings is the Fiber configuration New serves with, but for the
// application's name and its error handler. `make bench`'s framework ceiling
// serves with it under -settings, to show what the settings alone cost
// (fasthttp sets the connection's read and write deadlines on every
// request: docs/benchmarks.md).
func FiberSettings(cfg Config) fiber.Config {
	return fiber.Config{
		// Bodies up to BODY_LIMIT_BYTES are read before any handler runs;
		// larger ones are streamed, and limitBody reads them to their end (up
		// to drainLimit) before it answers 413, so that the client, or a proxy
		// in front that streams the body through, has sent all of it and keeps
		// a usable connection (a close with unread data resets it).
		BodyLimit:             cfg.BodyLimitBytes,
		StreamRequestBody:     true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		CaseSensitive:         true,
		// fasthttp would parse a multipart body (writing large parts to
		// disk) before any handler could refuse its type with a 415.
		DisablePreParseMultipartForm: true,
	}
}
