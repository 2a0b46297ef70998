package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/server"
)

// addRoutes is the whole auth API.
func addRoutes(app *fiber.App, d Deps) {
	auth := server.RequireToken(d.Verifier)
	app.Get("/.well-known/jwks.json", handleJWKS(d.Keys))
	app.Post("/api/auth/signup", handleSignup(d.Accounts.Signup, d.Clients))
	app.Post("/api/auth/login", handleLogin(d.Accounts.Login, d.Clients))
	app.Post("/api/auth/refresh", handleRefresh(d.Accounts.Refresh))
	app.Post("/api/auth/logout", auth, handleLogout(d.Accounts.Logout))
	app.Post("/api/auth/password/forgot", handleForgotPassword(d.Accounts.ForgotPassword, d.Clients))
	app.Post("/api/auth/password/reset", handleResetPassword(d.Accounts.ResetPassword, d.Clients))
	app.Post("/api/auth/logout-all", auth, handleLogoutAll(d.Accounts.LogoutAll))
	app.Post("/api/auth/password", auth, handleChangePassword(d.Accounts.ChangePassword))
	app.Get("/api/auth/me", auth, handleMe(d.Users))
	app.Delete("/api/auth/me", auth, handleDeleteMe(d.Accounts.DeleteAccount))
}
