// Command storage runs the MongoDB-protocol storage of `make bench` in a
// process of its own: FerretDB v1 embedded, on PostgreSQL when one answers
// (in a database of its own, created at start and dropped at exit) and on
// SQLite otherwise. It prints one JSON line, {"mongo_uri", "backend",
// "note"}, then serves until SIGINT/SIGTERM or until its stdin closes (the
// driver died).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
)

// Ready is the line the storage process prints once it listens.
type Ready struct {
	MongoURI string `json:"mongo_uri"`
	Backend  string `json:"backend"`
	Note     string `json:"note,omitempty"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "storage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("storage", flag.ContinueOnError)
	backend := fs.String("backend", "auto", "auto (PostgreSQL when reachable, else SQLite), postgresql or sqlite")
	pgURL := fs.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server (any database; a database of its own is created)")
	pgDB := fs.String("postgres-database", "moviebag_bench", "database created for the run and dropped at exit")
	dir := fs.String("dir", "", "SQLite data directory (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { // the driver holds our stdin: EOF means it is gone
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	ready := Ready{Backend: *backend}
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	var cleanup func()
	if *backend == "auto" || *backend == "postgresql" {
		benchURL, drop, err := createDatabase(ctx, *pgURL, *pgDB)
		switch {
		case err == nil:
			ready.Backend, cfg.Handler, cfg.PostgreSQLURL, cleanup = "postgresql", "postgresql", benchURL, drop
			ready.Note = "FerretDB v1 on PostgreSQL, database " + *pgDB + " (dropped at exit)"
		case *backend == "postgresql":
			return err
		default:
			ready.Note = fmt.Sprintf("PostgreSQL not reachable (%v): FerretDB v1 on SQLite instead", err)
		}
	}
	if cfg.Handler == "" {
		d := *dir
		if d == "" {
			tmp, err := os.MkdirTemp("", "moviebag-bench-sqlite-")
			if err != nil {
				return err
			}
			d = tmp
			cleanup = func() { _ = os.RemoveAll(tmp) }
		}
		abs, err := filepath.Abs(d)
		if err == nil {
			// FerretDB wants an existing directory.
			err = os.MkdirAll(abs, 0o755)
		}
		if err != nil {
			return err
		}
		ready.Backend, cfg.Handler, cfg.SQLiteURL = "sqlite", "sqlite", "file:"+abs+"/"
		if ready.Note == "" {
			ready.Note = "FerretDB v1 on SQLite"
		}
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx)
	}()
	ready.MongoURI = f.MongoDBURI()
	line, _ := json.Marshal(ready)
	fmt.Println(string(line))

	<-ctx.Done()
	cancel()
	<-done
	if cleanup != nil {
		cleanup()
	}
	return nil
}

// createDatabase (re)creates database name on the PostgreSQL server at
// server and returns its URL and a function dropping it.
func createDatabase(ctx context.Context, server, name string) (string, func(), error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres: %w", err)
	}
	exec := func(ctx context.Context, sql string) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, server)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close(context.Background()) }()
		_, err = conn.Exec(cctx, sql)
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", u.Redacted(), err)
	}
	if err := exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		// The run's context is done by now: dropping gets a fresh one.
		if err := exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "storage: drop database:", err)
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
