package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moviebag/moviebag/libs/linger"
)

// NewLogger returns a JSON logger at the given level (debug, info, warn,
// error) carrying the service name on every line.
func NewLogger(w io.Writer, level, service string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service), nil
}

// Admin answers /metrics, /healthz and /readyz on the admin port.
type Admin struct {
	ready atomic.Bool
	mux   *http.ServeMux
	srv   *http.Server
	addr  string
	errc  chan error
}

// NewAdmin returns the admin handler; it reports ready once Serve listens.
func NewAdmin(gatherer prometheus.Gatherer) *Admin {
	a := &Admin{mux: http.NewServeMux()}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			writeStatus(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		writeStatus(w, http.StatusOK, "ready")
	})
	return a
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// ServeHTTP implements http.Handler.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Start serves the admin endpoints on addr: /healthz answers at once and
// /readyz 503 until Serve is ready. Services start it before they wait for
// their dependencies, so probes see a live process that is not ready yet
// rather than a dead one. Serve starts it when nobody has.
func (a *Admin) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on ADMIN_ADDR %s: %w", addr, err)
	}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	a.addr = ln.Addr().String()
	a.errc = make(chan error, 1)
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()
	return nil
}

// Addr is the address Start listens on.
func (a *Admin) Addr() string { return a.addr }

// Shutdown stops the admin endpoints; it does nothing when they were never
// started, and may be called again.
func (a *Admin) Shutdown(ctx context.Context) error {
	if a.srv == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}

// SetReady sets what /readyz answers.
func (a *Admin) SetReady(ready bool) { a.ready.Store(ready) }

// Serve runs app on cfg.HTTPAddr and admin on cfg.AdminAddr until ctx is
// done, then shuts down gracefully: readiness goes false, it waits
// cfg.ShutdownDrainDelay for load balancers to notice, stops accepting and
// lets in-flight requests finish within cfg.ShutdownTimeout.
func Serve(ctx context.Context, logger *slog.Logger, cfg Config, app *fiber.App, admin *Admin) error {
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
	logger.Info("listening", "http", apiLn.Addr().String(), "admin", admin.Addr())

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
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownErr := app.ShutdownWithTimeout(cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr = errors.Join(shutdownErr, admin.Shutdown(sctx))
	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return errors.Join(serveErr, shutdownErr)
}

// ClientIP returns the address of the client that sent the request: the
// right-most X-Forwarded-For entry not added by a trusted proxy, or the
// peer's address when the peer is not a trusted proxy.
func ClientIP(c *fiber.Ctx, trusted []*net.IPNet) string {
	peer := c.Context().RemoteIP()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(strings.TrimSpace(hops[i]))
		if ip == nil {
			break
		}
		if !isTrusted(ip, trusted) || i == 0 {
			return ip.String()
		}
	}
	return peer.String()
}

func isTrusted(ip net.IP, trusted []*net.IPNet) bool {
	for _, n := range trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses TRUSTED_PROXIES.
func ParseCIDRs(list []string) ([]*net.IPNet, error) {
	nets := make([]*net.IPNet, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}
