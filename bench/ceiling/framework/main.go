// Command framework is the framework ceiling of `make bench`: a bare Fiber
// application answering every request with one fixed JSON object, the size
// of an error envelope. No middleware, no logging, no metrics: what Fiber
// itself costs on this machine, for the paths that touch no storage.
//
// With -settings it serves with the services' own Fiber settings
// (server.FiberSettings at the services' defaults: read, write and idle
// timeouts, streamed bodies), still with no middleware: run it both ways
// under the same load to see what those settings cost (docs/benchmarks.md).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/server"
)

// body is about as long as a NotFoundError envelope with a UUID request id.
var body = []byte(`{"message":"Requested resource was not found","status":404,"code":"NotFoundError","request_id":"00000000-0000-0000-0000-000000000000"}`)

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
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	return app.Listen(*addr)
}
