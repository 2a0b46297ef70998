// Command gateway runs deploy/local's gateway on its own, in its own
// process, for `make bench`: the same routing table as the ingress in front
// of the auth and movies services started by the bench driver, served as
// `make run` serves it (gateway.NewServer's body limit and timeouts, from
// the same variables with the same defaults, on gateway.Listen).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"

	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	auth := fs.String("auth", "http://127.0.0.1:8081", "auth service base URL")
	movies := fs.String("movies", "http://127.0.0.1:8082", "movies service base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	authURL, err := url.Parse(*auth)
	if err != nil {
		return fmt.Errorf("-auth: %w", err)
	}
	moviesURL, err := url.Parse(*movies)
	if err != nil {
		return fmt.Errorf("-movies: %w", err)
	}
	cfg, err := config.Load[gateway.Config](os.Getenv, nil)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := gateway.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: authURL, gateway.Movies: moviesURL}, logger), cfg)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	return srv.Serve(gateway.Listen(ln))
}
