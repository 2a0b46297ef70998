// Command framework is the framework ceiling of `make bench`: a bare Fiber
// application answering every request with one fixed JSON object, the size
// of an error envelope. No middleware, no logging, no metrics: what Fiber
// itself costs on this machine, for the paths that touch no storage.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gofiber/fiber/v2"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	return app.Listen(*addr)
}
