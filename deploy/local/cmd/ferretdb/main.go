// Command ferretdb serves the MongoDB wire protocol from SQLite files: FerretDB embedded as a library,
// as `make run` uses it. It is the dev MongoDB of the test cluster (deploy/k8s/cluster), where the official
// mongo image cannot be pulled: its image is a drop-in for that one, so only the chart's mongodb.image
// changes. It therefore also takes the official image's command line, `mongod [flags]`, with the
// flags that make sense for it (--port, --bind_ip_all, --dbpath) and --wiredTigerCacheSizeGB, which
// it accepts and ignores (SQLite has no WiredTiger cache).
//
//	ferretdb -listen :27017 -dir /data/db
//	mongod --wiredTigerCacheSizeGB 0.25
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/moviebag/moviebag/deploy/local/devstore"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "mongod" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	listen := fs.String("listen", "", "address of the MongoDB protocol listener (default :27017)")
	dir := fs.String("dir", "/data/db", "directory of the SQLite files (one per database)")
	fs.StringVar(dir, "dbpath", "/data/db", "mongod's name for -dir")
	port := fs.Int("port", 27017, "mongod's port flag: listen on all interfaces on this port")
	fs.Bool("bind_ip_all", true, "mongod's flag; always on")
	fs.Float64("wiredTigerCacheSizeGB", 0, "mongod's flag; accepted and ignored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *listen == "" {
		*listen = fmt.Sprintf(":%d", *port)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	uri, stopMongo, err := devstore.StartMongoOn(ctx, *listen, *dir, logger)
	if err != nil {
		return err
	}
	logger.Info("serving", "uri", uri)
	<-ctx.Done()
	logger.Info("stopping")
	stopMongo()
	return nil
}
