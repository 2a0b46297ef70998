// Command testdeps starts FerretDB and redis-server on free ports, plus a
// 3-master Redis Cluster, a Sentinel-managed primary with a replica and a
// mail server (Mailpit), runs the command after "--" with
// MOVIEBAG_TEST_MONGO_URI, MOVIEBAG_TEST_REDIS_URL,
// MOVIEBAG_TEST_REDIS_CLUSTER_URL, MOVIEBAG_TEST_REDIS_SENTINEL_URL,
// MOVIEBAG_TEST_SMTP_URL and MOVIEBAG_TEST_MAIL_API_URL set,
// and stops them again: `make test` runs the Go tests under it. When
// both variables are already set (a real MongoDB and Redis, as in GitHub
// Actions), it runs the command against those instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/moviebag/moviebag/deploy/local/devstore"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "testdeps:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "--" {
		return errors.New("usage: testdeps -- COMMAND [ARG...]")
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "testdeps")
	dir, err := os.MkdirTemp("", "moviebag-testdeps-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// A Redis Cluster and a Sentinel-managed primary, unless given too.
	var env []string
	if os.Getenv("MOVIEBAG_TEST_REDIS_CLUSTER_URL") == "" {
		url, stop, err := devstore.StartRedisCluster(ctx, filepath.Join(dir, "redis-cluster"), 3, logger)
		if err != nil {
			return fmt.Errorf("redis cluster: %w", err)
		}
		defer stop()
		env = append(env, "MOVIEBAG_TEST_REDIS_CLUSTER_URL="+url)
	}
	if os.Getenv("MOVIEBAG_TEST_REDIS_SENTINEL_URL") == "" {
		setup, stop, err := devstore.StartRedisSentinel(ctx, filepath.Join(dir, "redis-sentinel"), logger)
		if err != nil {
			return fmt.Errorf("redis sentinel: %w", err)
		}
		defer stop()
		env = append(env, "MOVIEBAG_TEST_REDIS_SENTINEL_URL="+setup.URL)
	}

	// A mail server whose mail the tests read, unless given too.
	if os.Getenv("MOVIEBAG_TEST_SMTP_URL") == "" || os.Getenv("MOVIEBAG_TEST_MAIL_API_URL") == "" {
		mp, err := devstore.StartMailpit(ctx, filepath.Join(dir, "mailpit"), "", "", logger)
		if err != nil {
			return fmt.Errorf("mailpit: %w", err)
		}
		defer mp.Stop()
		env = append(env, "MOVIEBAG_TEST_SMTP_URL="+mp.SMTPURL, "MOVIEBAG_TEST_MAIL_API_URL="+mp.APIURL)
	}

	if os.Getenv("MOVIEBAG_TEST_MONGO_URI") != "" && os.Getenv("MOVIEBAG_TEST_REDIS_URL") != "" {
		logger.Info("using the MongoDB and Redis given in MOVIEBAG_TEST_MONGO_URI and MOVIEBAG_TEST_REDIS_URL")
		return command(ctx, args[1:], env).Run()
	}
	stores, err := devstore.Start(ctx, devstore.Options{Dir: dir, RequireRedisServer: true, Logger: logger})
	if err != nil {
		return err
	}
	defer stores.Close()

	return command(ctx, args[1:], append(env,
		"MOVIEBAG_TEST_MONGO_URI="+stores.MongoURI,
		"MOVIEBAG_TEST_REDIS_URL="+stores.RedisURL,
	)).Run()
}

func command(ctx context.Context, argv, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
	cmd.Env = append(os.Environ(), env...)
	return cmd
}
