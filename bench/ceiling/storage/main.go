// Command storage is the storage ceiling of `make bench`: a bare Fiber
// application whose one route, GET /movies/:id, does what the movies
// service's GET /api/movies/:id does against storage (one FindOne by _id
// with mongo-driver v2, decoded and answered as JSON) and nothing else; and
// GET /movies, the same Find as the service's GET /api/movies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// movie has the stored fields of the movies service's documents.
type movie struct {
	ID        bson.ObjectID `bson:"_id" json:"id"`
	Name      string        `bson:"name" json:"name"`
	Casts     []string      `bson:"casts" json:"casts"`
	Genres    []string      `bson:"genres" json:"genres"`
	AddedBy   string        `bson:"added_by" json:"added_by"`
	CreatedAt time.Time     `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at" json:"updated_at"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "storage ceiling:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("storage", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	uri := fs.String("mongo-uri", "", "MongoDB URI")
	db := fs.String("database", "moviebag", "database holding the movies collection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(*uri))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(*db).Collection("movies")

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/movies/:id", func(c *fiber.Ctx) error {
		id, err := bson.ObjectIDFromHex(c.Params("id"))
		if err != nil {
			return fiber.ErrNotFound
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var m movie
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				return fiber.ErrNotFound
			}
			return err
		}
		return c.JSON(m)
	})
	// The list ceiling: the movies service's GET /api/movies query as it is
	// (filter on the cursor, sort by _id, limit one more than the page to
	// know whether there is a next one, every field), decoded and answered as
	// a JSON array.
	app.Get("/movies", func(c *fiber.Ctx) error {
		limit := c.QueryInt("limit", 20)
		filter := bson.D{}
		if cur := c.Query("cursor"); cur != "" {
			after, err := bson.ObjectIDFromHex(cur)
			if err != nil {
				return fiber.ErrBadRequest
			}
			filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cursor, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit+1)))
		if err != nil {
			return err
		}
		page := make([]movie, 0, limit+1)
		if err := cursor.All(ctx, &page); err != nil {
			return err
		}
		if len(page) > limit {
			page = page[:limit]
			c.Set(fiber.HeaderLink, "</movies?limit="+strconv.Itoa(limit)+"&cursor="+page[limit-1].ID.Hex()+`>; rel="next"`)
		}
		return c.JSON(page)
	})
	return app.Listen(*addr)
}
