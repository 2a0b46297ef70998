// Command movies is the moviebag movies service; see package app.
package main

import (
	"context"
	"fmt"
	"os"

	// GOMEMLIMIT from the container's memory limit (90% of the cgroup
	// limit, unless GOMEMLIMIT is set): the heap is collected harder before
	// the kernel kills the pod, instead of growing to twice the live heap.
	_ "github.com/KimMachineGun/automemlimit"

	"github.com/moviebag/moviebag/services/movies/app"
)

func main() {
	if err := app.Run(context.Background(), os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "movies:", err)
		os.Exit(1)
	}
}
