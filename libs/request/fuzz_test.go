package request_test

import (
	"errors"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
)

// FuzzDecode: whatever the body and content type, decoding either succeeds
// with a valid value or fails with a 4xx catalog error; it never panics.
func FuzzDecode(f *testing.F) {
	f.Add("application/json", []byte(`{"email":"a@b.co","password":"secret"}`))
	f.Add("application/json", []byte(`{"name":"Heat","casts":["a"]}`))
	f.Add("application/json", []byte(`{"email":{"$gt":""},"password":null}`))
	f.Add("application/json; charset=utf-8", []byte(`[1,2,3]`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json", []byte(`{"casts":[""," ",1e400]}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status() < 400 || e.Status() > 499 {
				t.Fatalf("Decode(%q, %q) = %v: want a 4xx catalog error", ct, body, err)
			}
		}
		c, err := request.Decode[creds](ct, body)
		check(err)
		if err == nil && (c.Email == "" || len(c.Password) < 6) {
			t.Fatalf("accepted invalid credentials %+v from %q", c, body)
		}
		_, err = request.Decode[movie](ct, body)
		check(err)
		_, err = request.Decode[patch](ct, body)
		check(err)
	})
}
