package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/moviebag/moviebag/libs/jwks"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// pathMovie has the movies service's create rules (services/movies/app's
// movieInput).
type pathMovie struct {
	Name   string   `json:"name" validate:"required,notblank,visible,max=200"`
	Casts  []string `json:"casts" validate:"required,min=1,max=100,dive,notblank,max=200"`
	Genres []string `json:"genres" validate:"required,min=1,max=20,dive,notblank,max=100"`
}

// notRevoked stands for the services' denylist mirror, an in-memory lookup
// once in sync (its cost with Redis behind it: libs/token's BenchmarkVerify).
type notRevoked struct{}

func (notRevoked) Denies(context.Context, *token.Claims) (bool, error) { return false, nil }

// BenchmarkPaths prices the storage-free paths of `make bench` through a
// whole service application (server.New with the services' defaults:
// MAX_CONCURRENT_REQUESTS 512, BODY_LIMIT_BYTES 64 KiB, REQUEST_TIMEOUT 5 s),
// called in process with a reused fasthttp request, so no network and no
// storage is measured: the JWKS answer, a 404 and a 405 envelope, a token
// check, and create-invalid (token check, strict decode and validation of
// the body, 400 envelope with details). LOG_LEVEL warn is what `make bench`
// runs; info (the default) adds the access-log line.
func BenchmarkPaths(b *testing.B) {
	verifier, bearer := newVerifier(b)

	newApp := func(level string) *fiber.App {
		logger, err := server.NewLogger(io.Discard, level, "bench")
		if err != nil {
			b.Fatal(err)
		}
		app := server.New("bench", server.Config{RequestTimeout: 5 * time.Second, BodyLimitBytes: 65536, MaxConcurrentRequests: 512},
			logger, metrics.New(prometheus.NewRegistry(), "bench"))
		auth := server.RequireToken(verifier)
		app.Get("/.well-known/jwks.json", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderCacheControl, "public, max-age=300")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(benchBody)
		})
		app.Get("/api/movies/:id", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) })
		app.Get("/api/auth/me", auth, func(c *fiber.Ctx) error { return c.SendString(server.TokenClaims(c).Subject) })
		app.Post("/api/movies", auth, func(c *fiber.Ctx) error {
			if _, err := request.DecodeValid[pathMovie](c); err != nil {
				return err
			}
			return c.SendStatus(fiber.StatusOK)
		})
		return app
	}
	warn, info := newApp("warn"), newApp("info")

	invalid := []byte(`{"name":" ","casts":[],"genres":["Drama"]}`)
	cases := []struct {
		name, method, path string
		app                *fiber.App
		headers            []string
		body               []byte
		status             int
	}{
		{"jwks 200", "GET", "/.well-known/jwks.json", warn, nil, nil, 200},
		{"jwks 200 access log", "GET", "/.well-known/jwks.json", info, nil, nil, 200},
		{"not-found 404", "GET", "/api/movies/6b06f1ebcf512d8be09e8da8/unknown", warn, nil, nil, 404},
		{"not-found 404 access log", "GET", "/api/movies/6b06f1ebcf512d8be09e8da8/unknown", info, nil, nil, 404},
		{"not-found 404 client request id", "GET", "/api/movies/6b06f1ebcf512d8be09e8da8/unknown", warn,
			[]string{"X-Request-ID", "bench-request-0001"}, nil, 404},
		{"method 405", "PATCH", "/api/movies/6b06f1ebcf512d8be09e8da8", warn, nil, nil, 405},
		{"token check 200", "GET", "/api/auth/me", warn, []string{"Authorization", bearer}, nil, 200},
		{"no token 401", "POST", "/api/movies", warn, []string{"Content-Type", "application/json"}, invalid, 401},
		{"create-invalid 400", "POST", "/api/movies", warn,
			[]string{"Authorization", bearer, "Content-Type", "application/json"}, invalid, 400},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			req.Header.SetMethod(tc.method)
			req.SetRequestURI(tc.path)
			for i := 0; i < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			if tc.body != nil {
				req.SetBody(tc.body)
				req.Header.SetContentLength(len(tc.body))
			}
			tc.app.Handler() // builds the routing tree
			// What the server calls: server.New's unknown-method check first.
			serveBench(b, tc.app.Server().Handler, &req, tc.status)
		})
	}
}

// serveBench calls h with req again and again, as fasthttp's server does
// for the requests of one connection (Fiber keeps the request's context in
// a user value, reset between them), and checks each answer's status.
func serveBench(b *testing.B, h fasthttp.RequestHandler, req *fasthttp.Request, status int) {
	b.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Init(req, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		h(&ctx)
		if ctx.Response.StatusCode() != status {
			b.Fatalf("status %d, want %d: %s", ctx.Response.StatusCode(), status, ctx.Response.Body())
		}
		ctx.Response.Reset()
		ctx.ResetUserValues()
	}
}

// newVerifier returns a token verifier for a fresh issuer, whose JWKS it
// has fetched (jwks.New, as the services do), with notRevoked for its
// denylist, and an Authorization header value with one of its tokens.
func newVerifier(tb testing.TB) (*token.Verifier, string) {
	tb.Helper()
	iss := testkit.NewIssuer(tb)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	keys, err := jwks.New(ctx, jwks.Options{
		URL: iss.JWKSURL, RefreshInterval: time.Hour, UnknownKIDInterval: time.Hour, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	v := token.NewVerifier(keys, token.Policy{Issuer: iss.Iss, Audience: iss.Aud, Algorithms: []string{"RS256"}}, notRevoked{})
	return v, "Bearer " + iss.Token(tb, "6b06f1ebcf512d8be09e8da8")
}
