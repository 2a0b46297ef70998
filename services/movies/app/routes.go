package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/server"
)

// addRoutes is the whole movies API.
func addRoutes(app *fiber.App, d Deps) {
	auth, store := server.RequireToken(d.Verifier), d.Movies
	app.Get("/api/movies", handleList(store))
	app.Post("/api/movies", auth, handleCreate(store))
	app.Get("/api/movies/:id", handleGet(store))
	app.Put("/api/movies/:id", auth, handleUpdate(store))
	app.Delete("/api/movies/:id", auth, handleDelete(store))
}
