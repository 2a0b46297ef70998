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

// hardBodyCap is the largest body the server reads at all.
const hardBodyCap = 1 << 20

// New returns a Fiber application for service with the shared error handler
// and middleware installed; the caller adds its routes.
func New(service string, cfg Config, logger *slog.Logger, m *metrics.Metrics) *fiber.App {
	render := errorHandler(logger, m)
	app := fiber.New(fiber.Config{
		AppName:      service,
		ErrorHandler: render,
		// The server itself refuses only bodies past a hard cap, closing the
		// connection; bodies over BODY_LIMIT_BYTES but under the cap are read
		// and refused by limitBody, so the client reliably gets its 413 on a
		// connection that stays usable (a close with unread data resets it).
		BodyLimit:             max(cfg.BodyLimitBytes, hardBodyCap),
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		CaseSensitive:         true,
		// fasthttp would parse a multipart body (writing large parts to
		// disk) before any handler could refuse its type with a 415.
		DisablePreParseMultipartForm: true,
	})
	app.Use(
		instrument(logger, m, render), // outermost: sees, renders and counts every outcome
		recoverPanic,
		limitBody(cfg.BodyLimitBytes),
		refuseContentEncoding,
		shed(cfg.MaxConcurrentRequests),
		deadline(cfg.RequestTimeout),
	)
	answerUnknownMethods(app, render)
	return app
}
