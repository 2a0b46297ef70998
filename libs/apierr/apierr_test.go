package apierr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
)

// The seed article's catalog, word for word: a public contract.
func TestSeedCatalog(t *testing.T) {
	seed := []struct {
		code    apierr.Code
		status  int
		message string
	}{
		{"InternalServerError", 500, "Something went wrong"},
		{"SchemaValidationError", 400, "Request is missing required fields"},
		{"MovieAlreadyExistsError", 400, "Movie with given name already exists"},
		{"UpdatingMovieError", 403, "Updating movie added by other is forbidden"},
		{"DeletingMovieError", 403, "Deleting movie added by other is forbidden"},
		{"MovieNotExistsError", 400, "Movie with given id doesn't exists"},
		{"EmailAlreadyExistsError", 400, "User with given email address already exists"},
		{"UnauthorizedError", 401, "Invalid username or password"},
	}
	for _, s := range seed {
		t.Run(string(s.code), func(t *testing.T) {
			if !s.code.Known() || s.code.Status() != s.status || s.code.Message() != s.message {
				t.Fatalf("%s: got %d %q, want %d %q", s.code, s.code.Status(), s.code.Message(), s.status, s.message)
			}
		})
	}
}

// Every code renders as the envelope: seed keys first, exact types, right
// status, and the headers its status calls for.
func TestEveryCodeEnvelope(t *testing.T) {
	for _, code := range apierr.Codes() {
		t.Run(string(code), func(t *testing.T) {
			e := apierr.Wrap(code, errors.New("secret internal cause: password=hunter2"))
			body := e.Envelope("req-1").Marshal()
			if !bytes.HasPrefix(body, []byte(`{"message":`)) || !bytes.Contains(body, []byte(`,"status":`)) {
				t.Errorf("envelope %s does not start with message then status", body)
			}
			if bytes.Contains(body, []byte("hunter2")) || bytes.Contains(body, []byte("secret")) {
				t.Errorf("envelope leaks the cause: %s", body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"message": code.Message(), "status": float64(code.Status()), "code": string(code), "request_id": "req-1"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if _, ok := got["details"]; ok {
				t.Errorf("details present without details: %s", body)
			}
			if code.Status() < 400 || code.Status() > 599 {
				t.Errorf("status %d is not an error status", code.Status())
			}

			rec := httptest.NewRecorder()
			apierr.WriteHTTP(rec, e, "req-1")
			h := rec.Header()
			if rec.Code != code.Status() || h.Get("Content-Type") != "application/json" || !bytes.Equal(rec.Body.Bytes(), body) {
				t.Errorf("WriteHTTP: %d %q %s", rec.Code, h.Get("Content-Type"), rec.Body.Bytes())
			}
			switch code.Status() {
			case http.StatusUnauthorized:
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("401 without a Bearer challenge: %q", h.Get("WWW-Authenticate"))
				}
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				if h.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name   string
		err    *apierr.Error
		header string
		want   string
	}{
		{"invalid token challenge", apierr.New(apierr.TokenExpiredError), "WWW-Authenticate",
			`Bearer realm="moviebag", error="invalid_token", error_description="Authorization token has expired"`},
		{"missing token challenge", apierr.New(apierr.TokenMissingError), "WWW-Authenticate", `Bearer realm="moviebag"`},
		{"retry after rounds up", apierr.New(apierr.TooManyRequestsError).WithRetryAfter(1500 * time.Millisecond), "Retry-After", "2"},
		{"retry after at least one second", apierr.New(apierr.ServiceUnavailableError), "Retry-After", "1"},
		{"allow", apierr.New(apierr.MethodNotAllowedError).WithAllow("GET", "PUT"), "Allow", "GET, PUT"},
		{"415 names the media type", apierr.New(apierr.UnsupportedMediaTypeError), "Accept", "application/json"},
		{"415 names the content coding", apierr.New(apierr.UnsupportedMediaTypeError), "Accept-Encoding", "identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Headers().Get(tt.header); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

// SetHeaders names the headers Headers returns, with the same values, for
// every code, and the same as the map-building Headers of before it
// (referenceHeaders, kept here as it was).
func TestSetHeadersAreHeaders(t *testing.T) {
	for _, code := range append(apierr.Codes(), "NoSuchCode") {
		for _, e := range []*apierr.Error{
			apierr.New(code), apierr.New(code).WithRetryAfter(1500 * time.Millisecond), apierr.New(code).WithAllow("GET", "PUT"),
			apierr.New(code).WithRetryAfter(-time.Second), apierr.New(code).WithRetryAfter(3 * time.Hour),
		} {
			got := http.Header{}
			e.SetHeaders(func(name, value string) { got.Add(name, value) })
			if want := referenceHeaders(e); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: SetHeaders %v, want %v", code, got, want)
			}
			if want := e.Headers(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: SetHeaders %v, Headers %v", code, got, want)
			}
		}
	}
}

// referenceHeaders is Headers as it was before SetHeaders: a map built per
// answer, the challenge formatted per answer.
func referenceHeaders(e *apierr.Error) http.Header {
	h := http.Header{}
	switch e.Code.Status() {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="moviebag"`
		if b := map[apierr.Code]string{apierr.TokenInvalidError: "invalid_token", apierr.TokenExpiredError: "invalid_token",
			apierr.TokenRevokedError: "invalid_token"}[e.Code]; b != "" {
			challenge += `, error="` + b + `", error_description="` + e.Code.Message() + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		s := int64((e.RetryAfter + time.Second - 1) / time.Second)
		if s < 1 {
			s = 1
		}
		h.Set("Retry-After", strconv.FormatInt(s, 10))
	case http.StatusMethodNotAllowed:
		if len(e.Allow) > 0 {
			h.Set("Allow", strings.Join(e.Allow, ", "))
		}
	case http.StatusUnsupportedMediaType:
		h.Set("Accept", "application/json")
		h.Set("Accept-Encoding", "identity")
	}
	return h
}

func TestFromError(t *testing.T) {
	wrapped := fmt.Errorf("create movie: %w", apierr.New(apierr.MovieAlreadyExistsError))
	if got := apierr.FromError(wrapped); got.Code != apierr.MovieAlreadyExistsError {
		t.Errorf("wrapped catalog error became %s", got.Code)
	}
	plain := errors.New("boom")
	got := apierr.FromError(plain)
	if got.Code != apierr.InternalServerError || !errors.Is(got, plain) {
		t.Errorf("plain error: %v", got)
	}
	if apierr.FromError(apierr.New("NoSuchCode")).Code != apierr.InternalServerError {
		t.Error("unknown code not turned into InternalServerError")
	}
	if apierr.FromError(nil) != nil {
		t.Error("FromError(nil) != nil")
	}
	if !apierr.Is(wrapped, apierr.MovieAlreadyExistsError) || apierr.Is(plain, apierr.InternalServerError) {
		t.Error("Is")
	}
}

func TestFromStatus(t *testing.T) {
	for status, code := range map[int]apierr.Code{
		404: apierr.NotFoundError, 405: apierr.MethodNotAllowedError, 413: apierr.PayloadTooLargeError,
		415: apierr.UnsupportedMediaTypeError, 431: apierr.RequestHeadersTooLargeError, 408: apierr.RequestTimeoutError,
		418: apierr.BadRequestError, 502: apierr.InternalServerError, 503: apierr.ServiceUnavailableError,
	} {
		if got := apierr.FromStatus(status).Code; got != code {
			t.Errorf("FromStatus(%d) = %s, want %s", status, got, code)
		}
	}
}
