package server

import (
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// answerUnknownMethods makes a request with a method Fiber does not know a
// 405 envelope with Allow (a 404 when no route has its path), counted like
// any other answer. Fiber v2 answers such a
// request itself, with a plain-text 400, before any middleware or error
// handler runs, and offers no hook for it; so the server's handler is
// wrapped. It must run after fiber.New (which sets that handler) and before
// the server starts; nothing in Fiber sets the handler again after that.
func answerUnknownMethods(app *fiber.App, render fiber.ErrorHandler) {
	known := app.Config().RequestMethods
	next := app.Server().Handler
	app.Server().Handler = func(rctx *fasthttp.RequestCtx) {
		method := rctx.Method()
		for _, k := range known {
			if string(method) == k { // compared without a copy: this runs on every request
				next(rctx)
				return
			}
		}
		c := app.AcquireCtx(rctx)
		defer app.ReleaseCtx(c)
		_ = render(c, fiber.ErrMethodNotAllowed)
	}
}
