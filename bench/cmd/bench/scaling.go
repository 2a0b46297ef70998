package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	mongoopts "go.mongodb.org/mongo-driver/v2/mongo/options"
)

// scaleRow is one path measured at one collection size.
type scaleRow struct {
	Movies      int
	Path, Via   string
	Concurrency int
	RPS         float64
	P50, P99    time.Duration
	Errors      int
}

// scalePaths are the paths the scaling runs measure at every size.
var scalePaths = []struct{ path, via string }{
	{"storage", "ceiling"}, {"get-movie", "direct"}, {"list-ceiling", "ceiling"}, {"list", "direct"},
}

// scaling measures get-by-id and the list, and their ceilings, at each of
// o.scale movies: the collection is emptied (the create runs added to it),
// then filled straight through the driver with documents shaped like the
// service's, up to each size in turn.
func scaling(ctx context.Context, st *stepper, o options, s *stack) ([]scaleRow, error) {
	client, err := mongo.Connect(mongoopts.Client().ApplyURI(s.storage.MongoURI))
	if err != nil {
		return nil, fmt.Errorf("scaling: connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(database).Collection("movies")
	if err := emptyCollection(ctx, coll); err != nil {
		return nil, fmt.Errorf("scaling: empty the collection: %w", err)
	}
	c := o.concurrency[len(o.concurrency)/2]
	var ids []string
	var rows []scaleRow
	owner := bson.NewObjectID().Hex()
	for _, n := range o.scale {
		st.step("scaling: filling the movies collection to %d movies", n)
		for len(ids) < n {
			batch := make([]any, 0, 1000)
			now := time.Now().UTC().Truncate(time.Millisecond)
			for len(ids)+len(batch) < n && len(batch) < 1000 {
				id := bson.NewObjectID()
				batch = append(batch, bson.D{
					{Key: "_id", Value: id}, {Key: "name", Value: fmt.Sprintf("Scale movie %06d", len(ids)+len(batch))},
					{Key: "casts", Value: bson.A{"Actor One", "Actor Two", "Actor Three"}},
					{Key: "genres", Value: bson.A{"Drama", "Crime"}},
					{Key: "added_by", Value: owner}, {Key: "created_at", Value: now}, {Key: "updated_at", Value: now},
				})
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				return rows, fmt.Errorf("scaling: insert: %w", err)
			}
			for _, d := range batch {
				ids = append(ids, d.(bson.D)[0].Value.(bson.ObjectID).Hex())
			}
		}
		movieAt := func(i uint64) string { return ids[(i*7919)%uint64(len(ids))] }
		for _, p := range scalePaths {
			var sc scenario
			switch p.path {
			case "storage":
				sc = scenario{Path: p.path, Via: p.via, Want: 200, next: get(func(i uint64) string { return s.storageCeilingURL + "/movies/" + movieAt(i) })}
			case "get-movie":
				sc = scenario{Path: p.path, Via: p.via, Want: 200, next: get(func(i uint64) string { return s.moviesURL + "/api/movies/" + movieAt(i) })}
			case "list-ceiling":
				sc = scenario{Path: p.path, Via: p.via, Want: 200, next: get(func(uint64) string { return s.storageCeilingURL + "/movies?limit=20" })}
			case "list":
				sc = scenario{Path: p.path, Via: p.via, Want: 200, next: get(func(uint64) string { return s.moviesURL + "/api/movies?limit=20" })}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r := attack(sc, c, o.warmup, o.duration)
			st.step("scaling: %6d movies  %-13s %-8s c=%-4d %9.1f req/s  p50 %7.2f ms  p99 %8.2f ms  errors %d",
				n, p.path, p.via, c, r.RPS, ms(r.P50), ms(r.P99), r.Errors)
			rows = append(rows, scaleRow{Movies: n, Path: p.path, Via: p.via, Concurrency: c, RPS: r.RPS, P50: r.P50, P99: r.P99, Errors: r.Errors})
		}
	}
	return rows, nil
}

// scalingSVG draws req/s against collection size, both on log scales, one
// line per path.
func scalingSVG(rows []scaleRow) string {
	var series []svgSeries
	for _, p := range scalePaths {
		var pts [][2]float64
		for _, r := range rows {
			if r.Path == p.path && r.Via == p.via && r.RPS > 0 {
				pts = append(pts, [2]float64{float64(r.Movies), r.RPS})
			}
		}
		series = append(series, svgSeries{Name: p.path + " " + p.via, Points: pts})
	}
	return svgChart("req/s by collection size (log scales)", "movies in the collection", "req/s", true, true, series)
}

// emptyCollection deletes every document of coll, keeping the collection and
// its indexes, in batches: FerretDB v1 on PostgreSQL deletes the matched ids
// in one statement, which fails past 65,535 of them ("extended protocol
// limited to 65535 parameters"), and the create runs alone can leave more.
func emptyCollection(ctx context.Context, coll *mongo.Collection) error {
	const batch = 10000
	for {
		cur, err := coll.Find(ctx, bson.D{}, mongoopts.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(batch))
		if err != nil {
			return err
		}
		var docs []struct {
			ID any `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		ids := make(bson.A, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
			return err
		}
	}
}
