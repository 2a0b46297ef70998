package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/linger"
)

// Addrs are the addresses a service listens on, as bound (a ":0" in the
// configuration becomes the port the system chose).
type Addrs struct {
	HTTP  string
	Admin string
}

// Serve runs app on cfg.HTTPAddr and admin on cfg.AdminAddr until ctx is
// done, then shuts down gracefully: readiness goes false, it waits
// cfg.ShutdownDrainDelay for load balancers to notice, stops accepting and
// lets in-flight requests finish; both servers are shut down within
// cfg.ShutdownTimeout together. Once both listen and the service is ready,
// ready (when not nil) is told where.
func Serve(ctx context.Context, logger *slog.Logger, cfg Config, app *fiber.App, admin *Admin, ready func(Addrs)) error {
	if admin.srv == nil {
		if err := admin.Start(cfg.AdminAddr); err != nil {
			return err
		}
	}
	apiLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = admin.Shutdown(ctx)
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}

	errc := make(chan error, 1)
	// Connections close lingeringly, so a client still sending a body the
	// server has refused (413) reads its answer instead of a reset.
	go func() { errc <- app.Listener(linger.Listen(apiLn, linger.DefaultTime, linger.DefaultTimeout)) }()
	admin.SetReady(true)
	addrs := Addrs{HTTP: apiLn.Addr().String(), Admin: admin.Addr()}
	logger.Info("listening", "http", addrs.HTTP, "admin", addrs.Admin)
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		serveErr = fmt.Errorf("serve: %w", serveErr)
	case serveErr = <-admin.errc:
		serveErr = fmt.Errorf("serve admin: %w", serveErr)
	}

	admin.SetReady(false)
	if serveErr == nil && cfg.ShutdownDrainDelay > 0 {
		logger.Info("draining before shutdown", "delay", cfg.ShutdownDrainDelay.String())
		time.Sleep(cfg.ShutdownDrainDelay)
	}
	// One budget for both servers, so drain delay + ShutdownTimeout bounds the whole stop and fits
	// the pod's terminationGracePeriodSeconds.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := errors.Join(app.ShutdownWithContext(sctx), admin.Shutdown(sctx))
	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return errors.Join(serveErr, shutdownErr)
}
