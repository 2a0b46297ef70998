// Command auth is the moviebag auth service; see package app.
package main

import (
	// GOMEMLIMIT from the container's memory limit (90% of the cgroup
	// limit, unless GOMEMLIMIT is set): the heap is collected harder before
	// the kernel kills the pod, instead of growing to twice the live heap.
	_ "github.com/KimMachineGun/automemlimit"

	"github.com/moviebag/moviebag/libs/service"
	"github.com/moviebag/moviebag/services/auth/app"
)

func main() { service.Main(app.Service, app.Run) }
