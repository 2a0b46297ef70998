package request_test

import (
	"testing"

	"github.com/moviebag/moviebag/libs/request"
)

// benchMovie has the movies service's create rules.
type benchMovie struct {
	Name   string   `json:"name" validate:"required,notblank,max=200"`
	Casts  []string `json:"casts" validate:"required,min=1,max=100,dive,notblank,max=200"`
	Genres []string `json:"genres" validate:"required,min=1,max=20,dive,notblank,max=100"`
}

// benchCredentials has the auth service's sign-up and login rules.
type benchCredentials struct {
	Email    string `json:"email" validate:"required,max=254,email"`
	Password string `json:"password" validate:"required,min=6,max=72"`
}

// BenchmarkDecode is strict decoding plus validation of the request bodies
// the services see most: a valid movie, valid credentials, and the invalid
// movie of `make bench`'s create-invalid path. Each "field by field" is the
// same body without the direct pass (as Decode was before it), side by side.
func BenchmarkDecode(b *testing.B) {
	b.Run("movie valid", func(b *testing.B) {
		body := []byte(`{"name":"Heat","casts":["Al Pacino","Robert De Niro","Val Kilmer"],"genres":["Crime","Thriller"]}`)
		benchDecode[benchMovie](b, body, false)
	})
	b.Run("credentials valid", func(b *testing.B) {
		body := []byte(`{"email":"ada@example.com","password":"secret123"}`)
		benchDecode[benchCredentials](b, body, false)
	})
	b.Run("movie invalid", func(b *testing.B) {
		body := []byte(`{"name":" ","casts":[],"genres":["Drama"]}`)
		benchDecode[benchMovie](b, body, true)
	})
	b.Run("movie unknown field", func(b *testing.B) {
		body := []byte(`{"name":"Heat","casts":["a"],"genres":["b"],"added_by":"x"}`)
		benchDecode[benchMovie](b, body, true)
	})
}

func benchDecode[T any](b *testing.B, body []byte, wantErr bool) {
	b.Helper()
	for _, d := range []struct {
		name   string
		decode func(string, []byte) (T, error)
	}{{"decode", request.Decode[T]}, {"field by field", request.DecodeFieldByField[T]}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := d.decode("application/json", body); (err != nil) != wantErr {
					b.Fatalf("err = %v, want error %v", err, wantErr)
				}
			}
		})
	}
}
