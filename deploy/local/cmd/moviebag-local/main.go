// Command moviebag-local runs the whole stack on one machine with nothing to
// configure (`make run`): FerretDB and Redis unless MONGO_URI / REDIS_URL
// are set, a mail server (Mailpit) unless SMTP_URL is, both services, and
// the gateway on 127.0.0.1:8080.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/moviebag/moviebag/deploy/local/stack"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "moviebag-local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "moviebag-local")
	logger.Info("starting the stack (Ctrl-C stops it)")
	s, err := stack.Start(ctx, stack.Options{
		MongoURI:        getenv("MONGO_URI"),
		RedisURL:        getenv("REDIS_URL"),
		SMTPURL:         getenv("SMTP_URL"),
		MailSMTPAddr:    or("MAIL_SMTP_ADDR", "127.0.0.1:1025"),
		MailAPIAddr:     or("MAIL_API_ADDR", "127.0.0.1:8025"),
		DataDir:         or("DATA_DIR", ".data"),
		GatewayAddr:     or("GATEWAY_ADDR", "127.0.0.1:8080"),
		AuthAddr:        or("AUTH_ADDR", "127.0.0.1:8081"),
		AuthAdminAddr:   or("AUTH_ADMIN_ADDR", "127.0.0.1:9091"),
		MoviesAddr:      or("MOVIES_ADDR", "127.0.0.1:8082"),
		MoviesAdminAddr: or("MOVIES_ADMIN_ADDR", "127.0.0.1:9092"),
		ServiceLogs:     stdout,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stderr, `
moviebag is up.
  gateway   %s   (the API: /api/auth/..., /api/movies, /.well-known/jwks.json)
  auth      %s   metrics and health on %s
  movies    %s   metrics and health on %s
  MongoDB   %s
  Redis     %s (%s)
  mail      %s

Try:
  curl -s -X POST %s/api/auth/signup -H 'Content-Type: application/json' \
       -d '{"email":"ada@example.com","password":"secret123"}'
  curl -s %s/api/movies

`, s.GatewayURL, s.AuthURL, s.AuthAdminURL, s.MoviesURL, s.MoviesAdminURL, s.MongoURI, s.RedisURL, s.RedisKind, mailLine(s),
		s.GatewayURL, s.GatewayURL)

	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case <-s.Done():
	}
	return s.Stop()
}

// mailLine says where auth sends mail and where it can be read.
func mailLine(s *stack.Stack) string {
	if s.MailAPIURL == "" {
		return s.SMTPURL + " (SMTP_URL)"
	}
	return s.SMTPURL + ", read it at " + s.MailAPIURL + "/api/v1/messages (Mailpit's API; its web UI is not built in)"
}
