package app

import (
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/services/movies/internal/movies"
)

// Page sizes of GET /api/movies.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// movieJSON is a movie as clients see it.
type movieJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Casts     []string  `json:"casts"`
	Genres    []string  `json:"genres"`
	AddedBy   string    `json:"added_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toJSON(m movies.Movie) movieJSON {
	return movieJSON{ID: m.ID.Hex(), Name: m.Name, Casts: nonNil(m.Casts), Genres: nonNil(m.Genres),
		AddedBy: m.AddedBy, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// movieInput is the body of POST /api/movies.
type movieInput struct {
	Name   string   `json:"name" validate:"required,notblank,visible,max=200"`
	Casts  []string `json:"casts" validate:"required,min=1,max=100,dive,notblank,max=200"`
	Genres []string `json:"genres" validate:"required,min=1,max=20,dive,notblank,max=100"`
}

// moviePatch is the body of PUT /api/movies/:id: any subset of the fields.
type moviePatch struct {
	Name   *string   `json:"name" validate:"omitempty,notblank,visible,max=200"`
	Casts  *[]string `json:"casts" validate:"omitempty,min=1,max=100,dive,notblank,max=200"`
	Genres *[]string `json:"genres" validate:"omitempty,min=1,max=20,dive,notblank,max=100"`
}

// Check refuses an update that changes nothing.
func (p *moviePatch) Check() []apierr.FieldError {
	if p.Name == nil && p.Casts == nil && p.Genres == nil {
		return []apierr.FieldError{{Field: "name", Issue: "at least one of name, casts, genres is required"}}
	}
	return nil
}

func handleList(store MovieStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		limit, after, err := pageParams(c)
		if err != nil {
			return err
		}
		page, err := store.List(c.UserContext(), after, limit+1)
		if err != nil {
			return err
		}
		if len(page) > limit {
			page = page[:limit]
			next := url.Values{"limit": {strconv.Itoa(limit)}, "cursor": {page[limit-1].ID.Hex()}}
			c.Set(fiber.HeaderLink, "<"+c.Path()+"?"+next.Encode()+`>; rel="next"`)
		}
		out := make([]movieJSON, len(page))
		for i, m := range page {
			out[i] = toJSON(m)
		}
		return c.JSON(out)
	}
}

// pageParams reads ?limit= (1 to 100, default 20) and ?cursor= (the id of
// the last movie of the previous page).
func pageParams(c *fiber.Ctx) (int, bson.ObjectID, error) {
	var details []apierr.FieldError
	limit := defaultLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			details = append(details, apierr.FieldError{Field: "limit", Issue: "must be an integer from 1 to 100"})
		}
		limit = n
	}
	var after bson.ObjectID
	if s := c.Query("cursor"); s != "" {
		id, err := bson.ObjectIDFromHex(s)
		if err != nil {
			details = append(details, apierr.FieldError{Field: "cursor", Issue: "must be a cursor from a Link header"})
		}
		after = id
	}
	if details != nil {
		return 0, after, apierr.New(apierr.InvalidParameterError).WithDetails(details...)
	}
	return limit, after, nil
}

func handleCreate(store MovieStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		in, err := request.DecodeValid[movieInput](c)
		if err != nil {
			return err
		}
		m, err := store.Create(c.UserContext(), movies.Movie{
			Name: in.Name, Casts: in.Casts, Genres: in.Genres, AddedBy: server.TokenClaims(c).Subject,
		})
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"id": m.ID.Hex()})
	}
}

func handleGet(store MovieStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := movieID(c)
		if err != nil {
			return err
		}
		m, err := store.Get(c.UserContext(), id)
		if err != nil {
			return err
		}
		return c.JSON(toJSON(m))
	}
}

func handleUpdate(store MovieStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := movieID(c)
		if err != nil {
			return err
		}
		in, err := request.DecodeValid[moviePatch](c)
		if err != nil {
			return err
		}
		m, err := store.Update(c.UserContext(), id, server.TokenClaims(c).Subject, movies.Patch(in))
		if err != nil {
			return err
		}
		return c.JSON(toJSON(m))
	}
}

func handleDelete(store MovieStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := movieID(c)
		if err != nil {
			return err
		}
		if err := store.Delete(c.UserContext(), id, server.TokenClaims(c).Subject); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// movieID parses the :id parameter.
func movieID(c *fiber.Ctx) (bson.ObjectID, error) { return parseMovieID(c.Params("id")) }

// parseMovieID reads a movie id (24 hex digits); a malformed id names no
// movie, so it is MovieNotExistsError as an unknown one is.
func parseMovieID(s string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return id, apierr.Wrap(apierr.MovieNotExistsError, err)
	}
	return id, nil
}
