package server_test

import (
	"io"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
)

// benchBody is about the size of a movie.
var benchBody = []byte(`{"id":"6b06f1ebcf512d8be09e8da8","name":"Heat","casts":["Al Pacino","Robert De Niro"],"genres":["Crime"]}`)

// BenchmarkObserve prices the shared middleware (request id, in-flight
// gauge, request deadline, panic recovery, metrics, access log) and the
// error envelope: Fiber's handler is called in process with a reused
// fasthttp request, so no network is measured. "bare" is Fiber alone with
// the same route; the difference is what libs/server adds per request.
func BenchmarkObserve(b *testing.B) {
	handler := func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(benchBody)
	}
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Get("/api/movies/:id", handler)

	moviebag := func(level string) *fiber.App {
		logger, err := server.NewLogger(io.Discard, level, "bench")
		if err != nil {
			b.Fatal(err)
		}
		app := server.New("bench", server.Config{RequestTimeout: 5 * time.Second, BodyLimitBytes: 65536},
			logger, metrics.New(prometheus.NewRegistry(), "bench"))
		app.Get("/api/movies/:id", handler)
		return app
	}
	warn, info := moviebag("warn"), moviebag("info")

	const route, unknown = "/api/movies/6b06f1ebcf512d8be09e8da8", "/api/nothing/here"
	cases := []struct {
		name      string
		app       *fiber.App
		path      string
		requestID string
		status    int
	}{
		{"bare/200", bare, route, "", 200},
		{"bare/404", bare, unknown, "", 404},
		{"observe warn/200", warn, route, "", 200},
		{"observe warn/200 client request id", warn, route, "bench-request-0001", 200},
		{"observe warn/404 envelope", warn, unknown, "", 404},
		{"observe info/200 access log", info, route, "", 200},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			req.Header.SetMethod(fiber.MethodGet)
			req.SetRequestURI(tc.path)
			if tc.requestID != "" {
				req.Header.Set("X-Request-ID", tc.requestID)
			}
			serveBench(b, tc.app.Handler(), &req, tc.status)
		})
	}
}
