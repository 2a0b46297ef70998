package service

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moviebag/moviebag/libs/server"
)

// Main is a service's whole main function: it runs run with the process's
// environment and standard output, and exits non-zero with the error on
// standard error when run fails.
func Main(name string, run func(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error) {
	if err := run(context.Background(), os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
