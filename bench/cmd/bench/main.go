// Command bench is `make bench`: it builds release binaries of both
// services, starts them as separate processes on self-started storage
// (FerretDB on PostgreSQL or SQLite, redis-server) behind the local
// gateway, seeds users and movies, drives closed-loop load with vegeta at
// several concurrencies against every path of issue 6 (through the gateway
// and straight to each service), measures the two ceilings (bare Fiber
// answering a fixed JSON; bare Fiber doing the same FindOne by _id) and the
// bcrypt bound of login in the same run, and prints a table, which it also
// writes to bench/results/. Its last line is
// `ceiling ratio get-movie direct: X`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the knobs of a run; every flag has an environment variable.
type options struct {
	repo        string
	out         string
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	movies      int
	users       int
	bcryptCost  int
	backend     string
	postgres    string
	wrk         bool
	only        string
	keep        bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var conc string
	fs.StringVar(&o.repo, "repo", env("BENCH_REPO", ".."), "repository root")
	fs.StringVar(&o.out, "out", env("BENCH_OUT", "results"), "directory for the dated results file (empty: do not write)")
	fs.DurationVar(&o.duration, "duration", mustDuration(env("BENCH_DURATION", "5s")), "measured time of each run (BENCH_DURATION)")
	fs.DurationVar(&o.warmup, "warmup", mustDuration(env("BENCH_WARMUP", "1s")), "unmeasured load before each run (BENCH_WARMUP)")
	fs.StringVar(&conc, "concurrency", env("BENCH_CONCURRENCY", "8,32,128"), "comma-separated concurrencies (BENCH_CONCURRENCY)")
	fs.IntVar(&o.movies, "movies", mustInt(env("BENCH_MOVIES", "300")), "movies seeded before the storage paths (BENCH_MOVIES)")
	fs.IntVar(&o.users, "users", mustInt(env("BENCH_USERS", "8")), "users signed up; logins and creates rotate over them (BENCH_USERS)")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", mustInt(env("BCRYPT_COST", "10")), "BCRYPT_COST of the auth service (its default is 10)")
	fs.StringVar(&o.backend, "backend", env("BENCH_BACKEND", "auto"), "FerretDB backend: auto (PostgreSQL when reachable, else SQLite), postgresql, sqlite (BENCH_BACKEND)")
	fs.StringVar(&o.postgres, "postgres", env("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "PostgreSQL server for FerretDB (BENCH_POSTGRES_URL)")
	fs.BoolVar(&o.wrk, "wrk", env("BENCH_WRK", "true") == "true", "cross-check a few paths with wrk when it is installed (BENCH_WRK)")
	fs.StringVar(&o.only, "only", env("BENCH_ONLY", ""), "comma-separated paths to run (default all): framework,storage,get-movie,list,jwks,not-found,create-invalid,login,create")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, binaries)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-concurrency %q: want positive integers", conc)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.duration <= 0 || o.movies < 1 || o.users < 1 {
		return o, errors.New("-duration, -movies and -users must be positive")
	}
	return o, nil
}

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %q is not a duration\n", s)
		os.Exit(2)
	}
	return d
}

func mustInt(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %q is not an integer\n", s)
		os.Exit(2)
	}
	return n
}

// step prints one progress line.
type stepper struct {
	w     io.Writer
	n     int
	start time.Time
}

func (s *stepper) step(format string, args ...any) {
	s.n++
	fmt.Fprintf(s.w, "bench [%3.0fs] %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	st := &stepper{w: stderr, start: time.Now()}
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "moviebag-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		st.step("work directory (logs, binaries): %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	st.step("building release binaries (-trimpath -ldflags \"-s -w\"): auth, movies, gateway, storage, ceilings")
	bins, err := build(ctx, repo, work)
	if err != nil {
		return err
	}

	env, err := startEnv(ctx, st, o, bins, work)
	if env != nil {
		defer env.close(st)
	}
	if err != nil {
		return err
	}
	rep, err := benchmark(ctx, st, o, env)
	if err != nil {
		return err
	}
	rep.Storage = env.storage
	table := rep.markdown()
	fmt.Fprint(stdout, "\n"+table)
	if o.out != "" {
		dir := o.out
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(repo, "bench", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(dir, rep.Started.Format("2006-01-02-1504")+".md")
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten to %s\n", path)
	}
	env.close(st)
	env = nil
	fmt.Fprintf(stdout, "ceiling ratio get-movie direct: %.2f\n", rep.GetMovieDirectRatio)
	return nil
}

// quiet is a logger for devstore's progress lines.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
