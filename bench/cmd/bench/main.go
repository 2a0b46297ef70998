// Command bench is `make bench`: it builds release binaries of both
// services, starts them as separate processes on self-started storage
// (FerretDB on PostgreSQL or SQLite, redis-server) behind the local
// gateway, seeds users and movies, drives closed-loop load with vegeta at
// several concurrencies against every path (get-movie, list, jwks,
// not-found, create-invalid, login, create; through the gateway and straight
// to each service), measures the two ceilings (bare Fiber
// answering a fixed JSON; bare Fiber doing the same FindOne by _id) and the
// bcrypt bound of login in the same run, runs each storage-free path again
// with wrk (a C load generator) beside vegeta, and prints a table, which it also
// writes to bench/results/, then list and get-by-id at growing collection
// sizes (a table and an SVG plot). Its last three lines are
// `ceiling ratio get-movie direct: X`, `ceiling ratio create-invalid direct: X`
// and `ceiling ratio list direct: X`. With -soak it runs a fixed-rate soak
// instead, sampling memory and goroutines (soak.go).
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
	scale       []int         // collection sizes of the scaling runs
	soak        time.Duration // > 0: a soak at soakRate instead of the table
	soakRate    int
	soakEvery   time.Duration
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
	fs.BoolVar(&o.wrk, "wrk", env("BENCH_WRK", "true") == "true", "run each storage-free path again with wrk, and get-movie on one id, when wrk is installed (BENCH_WRK)")
	fs.StringVar(&o.only, "only", env("BENCH_ONLY", ""), "comma-separated paths to run (default all): framework,storage,get-movie,list,jwks,not-found,create-invalid,login,create")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, binaries)")
	scale := fs.String("scale", env("BENCH_SCALE", "300,3000,30000"), "collection sizes at which list and get-by-id are measured after the table, comma-separated; empty: none (BENCH_SCALE)")
	fs.DurationVar(&o.soak, "soak", mustDuration(env("BENCH_SOAK", "0s")), "instead of the table: a soak of this length at -soak-rate, sampling memory (BENCH_SOAK; make bench-soak sets 10m)")
	fs.IntVar(&o.soakRate, "soak-rate", mustInt(env("BENCH_SOAK_RATE", "150")), "requests per second of the soak, spread over get-movie, list and create-invalid (BENCH_SOAK_RATE)")
	fs.DurationVar(&o.soakEvery, "soak-every", mustDuration(env("BENCH_SOAK_EVERY", "10s")), "sampling interval of the soak (BENCH_SOAK_EVERY)")
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
	for _, f := range strings.Split(*scale, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return o, fmt.Errorf("-scale %q: want positive integers", *scale)
		}
		o.scale = append(o.scale, n)
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
	_, _ = fmt.Fprintf(s.w, "bench [%3.0fs] %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
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
		defer func() { _ = os.RemoveAll(work) }()
	}

	st.step("building release binaries (-trimpath -tags %s -ldflags \"-s -w\"): auth, movies, gateway, storage, ceilings", releaseTags)
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
	if o.soak > 0 {
		dir := o.out
		if dir != "" && !filepath.IsAbs(dir) {
			dir = filepath.Join(repo, "bench", dir)
		}
		return soak(ctx, st, o, env, dir, stdout)
	}
	rep, err := benchmark(ctx, st, o, env)
	if err != nil {
		return err
	}
	rep.Storage = env.storage
	table := rep.markdown()
	_, _ = fmt.Fprint(stdout, "\n"+table)
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
		_, _ = fmt.Fprintf(stdout, "\nwritten to %s\n", path)
		if len(rep.Scaling) > 0 {
			svg := strings.TrimSuffix(path, ".md") + "-scaling.svg"
			if err := os.WriteFile(svg, []byte(scalingSVG(rep.Scaling)), 0o644); err != nil {
				return err
			}
			_, _ = fmt.Fprintf(stdout, "scaling plot written to %s\n", svg)
		}
	}
	env.close(st)
	env = nil
	for _, line := range rep.ratioLines() {
		_, _ = fmt.Fprintln(stdout, line)
	}
	_, _ = fmt.Fprintf(stdout, "ceiling ratio get-movie direct: %.2f\n", rep.GetMovieDirectRatio)
	_, _ = fmt.Fprintf(stdout, "ceiling ratio create-invalid direct: %.2f\n", rep.CreateInvalidDirectRatio)
	_, _ = fmt.Fprintf(stdout, "ceiling ratio list direct: %.2f\n", rep.ListDirectRatio)
	return nil
}

// quiet is a logger for devstore's progress lines.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
