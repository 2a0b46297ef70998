package server

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/moviebag/moviebag/libs/requestid"
)

// requestIDKey marks a request whose id is resolved. The id itself is kept
// where it is echoed, in the answer's X-Request-ID header, so that resolving
// it allocates nothing.
const requestIDKey = "moviebag.request_id"

// requestID returns the id of the request, resolving (and echoing) it the
// first time it is asked for: by instrument, or by the error handler for a
// request the server refused before any middleware ran. Like the strings
// Fiber hands out, the id is valid until the request ends (it is the
// header's bytes, or the client's): copy it to keep it longer.
func requestID(c *fiber.Ctx) string {
	h := &c.Response().Header
	if c.Locals(requestIDKey) != nil {
		return utils.UnsafeString(h.Peek(requestid.Header))
	}
	c.Locals(requestIDKey, true)
	if id := c.Get(requestid.Header); requestid.Sane(id) {
		h.Set(requestid.Header, id)
		return id
	}
	var buf [requestid.Len]byte
	h.SetBytesV(requestid.Header, requestid.AppendNew(buf[:0]))
	return utils.UnsafeString(h.Peek(requestid.Header))
}
