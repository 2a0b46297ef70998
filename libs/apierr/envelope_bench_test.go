package apierr_test

import (
	"errors"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
)

const benchRequestID = "0d9c2a3e-6f7b-4c1d-9a8e-5b4f3c2d1e0f"

// BenchmarkEnvelope is the cost of rendering one error answer's body: the
// envelope built from the catalog and encoded to JSON.
func BenchmarkEnvelope(b *testing.B) {
	cases := []struct {
		name string
		err  *apierr.Error
	}{
		{"NotFound", apierr.New(apierr.NotFoundError)},
		{"MovieNotExists", apierr.Wrap(apierr.MovieNotExistsError, errors.New("not found"))},
		{"SchemaValidation3Details", apierr.New(apierr.SchemaValidationError).WithDetails(
			apierr.FieldError{Field: "casts", Issue: "must have at least 1 item"},
			apierr.FieldError{Field: "genres[0]", Issue: "must not be blank"},
			apierr.FieldError{Field: "name", Issue: "must not be blank"},
		)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n += len(tc.err.Envelope(benchRequestID).Marshal())
			}
			b.SetBytes(int64(n / b.N))
		})
		// What the server's error handler does: appended to a buffer on
		// its stack, then copied into the response.
		b.Run(tc.name+" appended", func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				var buf [512]byte
				n += len(tc.err.Envelope(benchRequestID).AppendJSON(buf[:0]))
			}
			b.SetBytes(int64(n / b.N))
		})
	}
}

// BenchmarkHeaders is the cost of the extra headers of an error answer
// (WWW-Authenticate on a 401, Retry-After on a 503).
func BenchmarkHeaders(b *testing.B) {
	for _, code := range []apierr.Code{apierr.TokenRevokedError, apierr.ServiceUnavailableError, apierr.NotFoundError} {
		e := apierr.New(code)
		b.Run(string(code), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Headers()
			}
		})
		b.Run(string(code)+" SetHeaders", func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				e.SetHeaders(func(name, value string) { n += len(name) + len(value) })
			}
		})
	}
}

// BenchmarkAs is the cost of finding the catalog error in a wrapped chain.
func BenchmarkAs(b *testing.B) {
	err := error(apierr.Wrap(apierr.MovieNotExistsError, errors.New("mongo: no documents in result")))
	b.ReportAllocs()
	for b.Loop() {
		_ = apierr.FromError(err)
	}
}
