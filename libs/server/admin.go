package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
