package server

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

// now is time.Now read from the monotonic clock alone. time.Now reads two
// clocks, the wall clock and the monotonic one (two calls into the kernel's
// vDSO, slow on a virtual machine: clock reads were 4–12 % of a storage-free
// request in the profiles of issue 24); the server read both when the
// request began (c.Context().Time()), so now is that time moved on by the
// monotonic time since, one read. Its monotonic reading, which every
// comparison, timer and network deadline uses, is time.Now's; its wall time
// differs from time.Now's only if the wall clock was stepped since the
// request began. A request the server did not read (a RequestCtx made by
// hand, as in the benchmarks) has no such time: then it is time.Now.
func now(c *fiber.Ctx) time.Time {
	start := c.Context().Time()
	if start.IsZero() {
		return time.Now()
	}
	return start.Add(time.Since(start))
}
