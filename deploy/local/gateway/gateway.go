// Package gateway is the local stand-in for the cluster's ingress: the same
// routing table in front of the two services, and the same error envelope
// for what it answers itself.
package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/linger"
	"github.com/moviebag/moviebag/libs/requestid"
)

// Config is what the gateway reads from the environment: the same variables,
// with the same defaults, as the services behind it.
type Config struct {
	BodyLimitBytes int64         `env:"BODY_LIMIT_BYTES" envDefault:"65536"`
	ReadTimeout    time.Duration `env:"READ_TIMEOUT" envDefault:"10s"`
	WriteTimeout   time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s"`
	IdleTimeout    time.Duration `env:"IDLE_TIMEOUT" envDefault:"60s"`
}

// NewServer returns the HTTP server for the gateway handler h: a whole
// request must arrive within cfg.ReadTimeout (a dripped body is answered 408
// when the answer can still be written, that is when WRITE_TIMEOUT is longer),
// idle keep-alive connections close after cfg.IdleTimeout, and a body over
// cfg.BodyLimitBytes is answered 413 by the gateway itself, never sent on.
func NewServer(h http.Handler, cfg Config) *http.Server {
	return &http.Server{
		Handler:           limitBody(h, cfg.BodyLimitBytes),
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
	}
}

// Listen returns ln with lingering closes (see package linger): a client
// still sending a body the gateway refused reads the 413 instead of a reset.
func Listen(ln net.Listener) net.Listener {
	return linger.Listen(ln, linger.DefaultTime, linger.DefaultTimeout)
}

// limitBody answers 413 at once when the declared length is over limit, and
// otherwise stops reading a body (chunked, or longer than declared) at
// limit; the proxy's error handler then answers 413 too. A request without
// a body goes on as it came.
func limitBody(h http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limit > 0 && r.ContentLength > limit {
			id := requestid.Resolve(headerValue(r.Header, idHeader))
			w.Header()[idHeader] = []string{id}
			w.Header().Set("Connection", "close")
			apierr.WriteHTTP(w, apierr.Wrap(apierr.PayloadTooLargeError, errors.New("body over BODY_LIMIT_BYTES")), id)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			if limit > 0 {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			// The proxy passes the request's body on as it is: its error
			// handler finds this one there (clientError).
			r.Body = &recordingBody{body: r.Body}
		}
		h.ServeHTTP(w, r)
	})
}

// idHeader is requestid.Header in the form net/http keeps header names in:
// used as a map key, it is not canonicalized again (a new string) per request.
var idHeader = textproto.CanonicalMIMEHeaderKey(requestid.Header)

// headerValue is h.Get(key) for a key already in canonical form.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// recordingBody remembers how reading the client's body went, so that a
// failed proxy round trip can be told apart: the client's fault (too large,
// too slow) or the upstream's. The transport reads the body on a goroutine of
// its own, which may still be reading when the round trip has already failed
// (the upstream closed the connection first): reads are serialized, and
// Close only stops the transport's reads. The server closes the client's
// body itself once the handler returns.
type recordingBody struct {
	mu     sync.Mutex
	body   io.ReadCloser
	err    error // the error reading body, io.EOF once it was read whole
	closed atomic.Bool
}

// errProxyBodyClosed is what the transport reads after it closed the body.
var errProxyBodyClosed = errors.New("gateway: read of a closed proxied body")

func (b *recordingBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errProxyBodyClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read(p)
}

func (b *recordingBody) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *recordingBody) Close() error {
	b.closed.Store(true)
	return nil
}

// settle returns the error reading the client's body, or nil when it ended
// within the limit. A body the round trip left partly unread is read on
// first (at most the limit, within the server's read timeout): whether the
// client's body was over the limit or too slow must not depend on whether
// the upstream or the gateway's own limit stopped the round trip first.
func (b *recordingBody) settle() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		_, _ = io.Copy(io.Discard, readerFunc(b.read))
	}
	if errors.Is(b.err, io.EOF) {
		return nil
	}
	return b.err
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// clientError maps a failed round trip caused by the client's body to its
// envelope: 413 over the limit, 408 too slow, 400 otherwise; nil when the
// body ended within the limit, or there was none.
func clientError(r *http.Request) *apierr.Error {
	rec, _ := r.Body.(*recordingBody)
	if rec == nil {
		return nil
	}
	err := rec.settle()
	if err == nil {
		return nil
	}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return apierr.Wrap(apierr.PayloadTooLargeError, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return apierr.Wrap(apierr.RequestTimeoutError, err)
	default:
		return apierr.Wrap(apierr.BadRequestError, err)
	}
}

// Upstream names a service behind the gateway.
type Upstream string

// The upstreams.
const (
	Auth   Upstream = "auth"
	Movies Upstream = "movies"
)

// route is one line of the routing table: requests whose path is Path, or
// starts with Path + "/" when Prefix is set, go to Upstream.
type route struct {
	Path     string   `json:"path"`
	Prefix   bool     `json:"prefix"`
	Upstream Upstream `json:"upstream"`
	// under is Path + "/", made once: the paths below Path when Prefix is set.
	under string
}

// routesJSON is the routing table as data. deploy/k8s/render reads the same
// file to check that the Helm chart's Ingress and HTTPRoute route exactly as
// this gateway does.
//
//go:embed routes.json
var routesJSON []byte

// routes is the routing table. The file is part of the binary, so a bad one
// is a build mistake (TestMatch fails on it), not a runtime condition:
// like regexp.MustCompile, it stops the program at start.
var routes = mustParseRoutes(routesJSON)

func mustParseRoutes(data []byte) []route {
	rs, err := parseRoutes(data)
	if err != nil {
		panic(fmt.Sprintf("gateway: routes.json: %v", err))
	}
	return rs
}

// parseRoutes reads a routing table: a JSON array of routes, each with a
// path from the root and a known upstream.
func parseRoutes(data []byte) ([]route, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rs []route
	if err := dec.Decode(&rs); err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, errors.New("no routes")
	}
	for i, r := range rs {
		if !strings.HasPrefix(r.Path, "/") || (r.Upstream != Auth && r.Upstream != Movies) {
			return nil, fmt.Errorf("route %+v: want a path starting with / and upstream %q or %q", r, Auth, Movies)
		}
		rs[i].under = r.Path + "/"
	}
	return rs, nil
}

// Match returns the upstream for path, if any.
func Match(path string) (Upstream, bool) {
	for _, r := range routes {
		if path == r.Path || (r.Prefix && strings.HasPrefix(path, r.under)) {
			return r.Upstream, true
		}
	}
	return "", false
}

// Backend is one replica of an upstream. When ReadyURL is set the gateway
// polls it and sends traffic only while it answers 200, as a Kubernetes
// Service follows readiness; without it the backend is always used.
type Backend struct {
	URL      *url.URL
	ReadyURL string
}

// New returns the gateway handler proxying to one backend per upstream.
func New(upstreams map[Upstream]*url.URL, logger *slog.Logger) http.Handler {
	pools := make(map[Upstream][]Backend, len(upstreams))
	for name, u := range upstreams {
		pools[name] = []Backend{{URL: u}}
	}
	return NewBalanced(context.Background(), pools, logger)
}

// NewBalanced returns the gateway handler spreading each upstream's traffic
// round-robin over its ready backends; readiness polling stops with ctx.
func NewBalanced(ctx context.Context, upstreams map[Upstream][]Backend, logger *slog.Logger) http.Handler {
	// Connections to the upstreams are kept for reuse: as many idle ones
	// per upstream as `make bench` runs concurrent clients and more.
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	buffers := &bufferPool{}
	pools := make(map[Upstream]*pool, len(upstreams))
	for name, backends := range upstreams {
		p := &pool{}
		for _, b := range backends {
			rb := &backend{Backend: b, proxy: newProxy(name, b.URL, transport, buffers, logger)}
			rb.ready.Store(b.ReadyURL == "")
			if b.ReadyURL != "" {
				go rb.pollReadiness(ctx)
			}
			p.backends = append(p.backends, rb)
		}
		pools[name] = p
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.Header[idHeader]
		id := requestid.Resolve(headerValue(r.Header, idHeader))
		if len(client) != 1 || client[0] != id { // else the header says it already
			r.Header[idHeader] = []string{id}
		}
		up, ok := Match(r.URL.Path)
		if !ok {
			w.Header()[idHeader] = []string{id}
			apierr.WriteHTTP(w, apierr.New(apierr.NotFoundError), id)
			return
		}
		b := pools[up].pick()
		if b == nil {
			logger.Warn("no ready backend", "upstream", string(up), "request_id", id)
			w.Header()[idHeader] = []string{id}
			apierr.WriteHTTP(w, apierr.Wrap(apierr.ServiceUnavailableError, errors.New("no ready backend")), id)
			return
		}
		b.proxy.ServeHTTP(w, r)
	})
}

func newProxy(name Upstream, target *url.URL, transport http.RoundTripper, buffers httputil.BufferPool,
	logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: buffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			id := headerValue(r.Header, idHeader)
			w.Header()[idHeader] = []string{id}
			if e := clientError(r); e != nil {
				w.Header().Set("Connection", "close")
				apierr.WriteHTTP(w, e, id)
				return
			}
			logger.Warn("upstream unavailable", "upstream", string(name), "request_id", id, "error", err)
			apierr.WriteHTTP(w, apierr.Wrap(apierr.ServiceUnavailableError, err), id)
		},
	}
}

// bufferPool keeps the buffers the proxies copy answers through (32 KiB,
// what httputil.ReverseProxy makes per answer without a pool). Arrays are
// pooled by pointer, so that a Put allocates nothing.
type bufferPool struct{ p sync.Pool }

const proxyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[proxyBufferSize]byte); ok {
		return buf[:]
	}
	return new([proxyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == proxyBufferSize {
		b.p.Put((*[proxyBufferSize]byte)(buf))
	}
}

type pool struct {
	backends []*backend
	next     atomic.Uint64
}

// pick returns the next ready backend, or nil when none is ready.
func (p *pool) pick() *backend {
	n := uint64(len(p.backends))
	start := p.next.Add(1)
	for i := range n {
		if b := p.backends[(start+i)%n]; b.ready.Load() {
			return b
		}
	}
	return nil
}

type backend struct {
	Backend
	proxy *httputil.ReverseProxy
	ready atomic.Bool
}

// readinessInterval is how often backends' readiness is polled.
const readinessInterval = 100 * time.Millisecond

func (b *backend) pollReadiness(ctx context.Context) {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	t := time.NewTicker(readinessInterval)
	defer t.Stop()
	for {
		ready := false
		if resp, err := client.Get(b.ReadyURL); err == nil {
			_ = resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		b.ready.Store(ready)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
