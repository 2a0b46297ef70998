package server

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/apierr"
)

var errContentEncoding = errors.New("request body has a content coding other than identity")

// refuseContentEncoding answers 415 to a request whose body has a content
// coding other than identity, in any of its Content-Encoding lines. The
// services take bodies as they come: BODY_LIMIT_BYTES bounds the bytes on the
// wire, and a compressed body would escape it (Fiber's c.Body() inflates
// gzip, deflate and brotli, stacked, with no limit: a few hundred bytes can
// inflate to hundreds of megabytes). JSON request bodies here are small, so
// no client needs to compress them.
func refuseContentEncoding(c *fiber.Ctx) error {
	if len(c.Request().Body()) == 0 {
		return c.Next()
	}
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderContentEncoding) {
		for coding := range strings.SplitSeq(string(line), ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return apierr.Wrap(apierr.UnsupportedMediaTypeError, errContentEncoding)
			}
		}
	}
	return c.Next()
}
