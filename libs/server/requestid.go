package server

import (
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/requestid"
)

const requestIDKey = "moviebag.request_id"

// requestID returns the id of the request, resolving (and echoing) it the
// first time it is asked for: by instrument, or by the error handler for a
// request the server refused before any middleware ran.
func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(requestIDKey).(string); ok {
		return id
	}
	id := requestid.Resolve(c.Get(requestid.Header))
	c.Locals(requestIDKey, id)
	c.Set(requestid.Header, id)
	return id
}
