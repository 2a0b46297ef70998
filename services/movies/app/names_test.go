package app_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/movies/app"
)

// A name with any Default_Ignorable_Code_Point in it, or with nothing
// visible, is refused on create and on rename: otherwise two movies could
// both show as "Heat".
func TestNamesWithDefaultIgnorablesRefused(t *testing.T) {
	f := startMovies(t)
	asAlice := testkit.Bearer(f.iss.Token(t, alice))
	heat := f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	for _, name := range []string{
		`Heat\u034f`, `Heat\ufe0f`, `Heat\u3164`, `\u115fHeat`, `He\u17b4at`, `Heat\uffa0`, `Heat\u180b`,
		`Heat\udb40\udc20`, // U+E0020, a tag space
		`\u3164`, `\u2800`, `\u0301`, `\u00a0\u0301\u00a0`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, target := range []struct{ method, path, body string }{
				{"POST", "/api/movies", `{"name":"` + name + `","casts":["x"],"genres":["y"]}`},
				{"PUT", "/api/movies/" + heat, `{"name":"` + name + `"}`},
			} {
				env := testkit.Envelope(t, testkit.CallAPI(t, target.method, f.URL+target.path, target.body, asAlice...),
					apierr.SchemaValidationError)
				if len(env.Details) != 1 || env.Details[0].Field != "name" {
					t.Errorf("%s: details %+v, want one naming name", target.method, env.Details)
				}
			}
		})
	}
	if list := testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", "")); len(list) != 1 {
		t.Errorf("%d movies stored, want 1: %+v", len(list), list)
	}
}

// Movies whose key was stored before inner white space was collapsed get
// the key of today at start, so that a new "Heat 2" conflicts with an old
// "Heat  2"; two old movies that are now one name both stay, the later
// with a key no new name can have.
func TestStaleNameKeysRekeyedAtStart(t *testing.T) {
	mdb := testkit.MongoDatabase(t)
	db := mdb.Name()
	ctx := context.Background()
	coll := mdb.Collection("movies")
	// As the service stored them before: trimmed, NFC, case-folded, white space as written.
	old := map[string]string{"Heat  2": "heat  2", "Heat\u00a02": "heat\u00a02", "Big\u3000Fish": "big\u3000fish", "Ronin": "ronin"}
	ids := map[string]bson.ObjectID{}
	for _, name := range []string{"Heat  2", "Heat\u00a02", "Big\u3000Fish", "Ronin"} {
		ids[name] = bson.NewObjectID()
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: ids[name]}, {Key: "name", Value: name}, {Key: "name_key", Value: old[name]},
			{Key: "casts", Value: bson.A{"a"}}, {Key: "genres", Value: bson.A{"b"}}, {Key: "added_by", Value: alice}}); err != nil {
			t.Fatal(err)
		}
	}

	iss := testkit.NewIssuer(t)
	s := testkit.Start(t, app.Run, map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":", "JWKS_URL": iss.JWKSURL,
	})
	asAlice := testkit.Bearer(iss.Token(t, alice))
	for _, name := range []string{"Heat 2", "big fish", "RONIN"} {
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`, asAlice...),
			apierr.MovieAlreadyExistsError)
	}
	for name, id := range ids {
		if got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", s.URL+"/api/movies/"+id.Hex(), "")); got.Name != name {
			t.Errorf("movie %q after start: %+v", name, got)
		}
	}
	var later struct {
		Key string `bson:"name_key"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids["Heat\u00a02"]}}).Decode(&later); err != nil {
		t.Fatal(err)
	}
	if want := "heat 2\x00" + ids["Heat\u00a02"].Hex(); later.Key != want {
		t.Errorf("the later of two old look-alikes has key %q, want %q", later.Key, want)
	}
}
