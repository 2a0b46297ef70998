package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/token"
)

// addRoutes is the whole auth API.
func addRoutes(app *fiber.App, cfg Config, d Deps) {
	auth := token.Require(d.Verifier)
	app.Get("/.well-known/jwks.json", handleJWKS(d.Keys))
	app.Post("/api/auth/signup", handleSignup(d.Users, d.Hasher, d.SignupLimit, d.Clients))
	app.Post("/api/auth/login", handleLogin(d.Users, d.Hasher, d.Keys, d.IPLimit, d.EmailLimit, d.Clients, cfg, d.Metrics))
	app.Post("/api/auth/logout", auth, handleLogout(d.Denylist, d.Metrics))
	app.Get("/api/auth/me", auth, handleMe(d.Users))
}
