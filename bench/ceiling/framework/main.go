// Command framework is the framework ceiling of `make bench`: a bare Fiber
// application answering every request with one fixed JSON object, the size
// of an error envelope. No middleware, no logging, no metrics: what Fiber
// itself costs on this machine, for the paths that touch no storage.
//
// With -settings it serves with the services' own Fiber settings
// (server.FiberSettings at the services' defaults: read, write and idle
// timeouts, streamed bodies), still with no middleware: run it both ways
// under the same load to see what those settings cost (docs/benchmarks.md).
//
// With -decode it first does what a create must do with its body before
// anything else: request.DecodeValid into a movie's fields (strict decoding
// and go-playground/validator, with the tags of services/movies), answering
// 400 with the same fixed body when the body is refused. Under create-invalid's
// request (`wrk -s`, docs/benchmarks.md) it shows what that required step
// costs on its own: no token check, envelope, metrics, log or request id.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
)

// body is about as long as a NotFoundError envelope with a UUID request id.
var body = []byte(`{"message":"Requested resource was not found","status":404,"code":"NotFoundError","request_id":"00000000-0000-0000-0000-000000000000"}`)

// movie has the fields and validation tags of services/movies' create body.
type movie struct {
	Name   string   `json:"name" validate:"required,notblank,visible,max=200"`
	Casts  []string `json:"casts" validate:"required,min=1,max=100,dive,notblank,max=200"`
	Genres []string `json:"genres" validate:"required,min=1,max=20,dive,notblank,max=100"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "framework ceiling:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("framework", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	withSettings := fs.Bool("settings", false, "serve with the services' Fiber settings (timeouts, streamed bodies) at their defaults")
	decode := fs.Bool("decode", false, "decode and validate the body as a movie first (strict decoding, go-playground/validator); 400 when refused")
	if err := fs.Parse(args); err != nil {
		return err
	}
	settings := fiber.Config{DisableStartupMessage: true}
	if *withSettings {
		cfg, err := config.Load[server.Config](func(string) string { return "" }, nil) // the defaults
		if err != nil {
			return err
		}
		settings = server.FiberSettings(cfg)
	}
	app := fiber.New(settings)
	app.Use(func(c *fiber.Ctx) error {
		if *decode {
			if _, err := request.DecodeValid[movie](c); err != nil {
				c.Status(fiber.StatusBadRequest)
			}
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	return app.Listen(*addr)
}
