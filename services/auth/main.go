// Command auth is the moviebag auth service; see package app.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moviebag/moviebag/services/auth/app"
)

func main() {
	if err := app.Run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}
