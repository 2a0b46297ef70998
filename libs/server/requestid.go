package server

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/moviebag/moviebag/libs/requestid"
)

// requestID resolves the id of the request and echoes it: the client's, when
// sane, or a new one. It is resolved once, by instrument, or by the error
// handler for a request the server refused before instrument ran; it is kept
// where it is echoed, in the answer's X-Request-ID header, so that resolving
// it allocates nothing, and echoedRequestID reads it from there. Like the
// strings Fiber hands out, the id is valid until the request ends (it is the
// header's bytes, or the client's): copy it to keep it longer.
func requestID(c *fiber.Ctx) string {
	h := &c.Response().Header
	if id := c.Get(requestid.Header); requestid.Sane(id) {
		h.Set(requestid.Header, id)
		return id
	}
	var buf [requestid.Len]byte
	h.SetBytesV(requestid.Header, requestid.AppendNew(buf[:0]))
	return echoedRequestID(c)
}

// echoedRequestID returns the id requestID resolved, from the answer's
// X-Request-ID header.
func echoedRequestID(c *fiber.Ctx) string {
	return utils.UnsafeString(c.Response().Header.Peek(requestid.Header))
}
