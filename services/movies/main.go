// Command movies is the moviebag movies service; see package app.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moviebag/moviebag/services/movies/app"
)

func main() {
	if err := app.Run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "movies:", err)
		os.Exit(1)
	}
}
