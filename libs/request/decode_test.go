package request_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
)

type creds struct {
	Email    string `json:"email" validate:"required,max=254,email"`
	Password string `json:"password" validate:"required,min=6,maxbytes=72"`
}

type movie struct {
	Name  string   `json:"name" validate:"required,notblank,visible,max=200"`
	Casts []string `json:"casts" validate:"required,min=1,max=3,dive,notblank"`
}

type patch struct {
	Name  *string   `json:"name" validate:"omitempty,notblank"`
	Casts *[]string `json:"casts" validate:"omitempty,min=1,dive,notblank"`
}

func (p *patch) Check() []apierr.FieldError {
	if p.Name == nil && p.Casts == nil {
		return []apierr.FieldError{{Field: "name", Issue: "at least one field is required"}}
	}
	return nil
}

const jsonCT = "application/json"

func TestDecodeCredentials(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    string
		code    apierr.Code // "" = valid
		details []apierr.FieldError
	}{
		{"valid", jsonCT, `{"email":"a@b.co","password":"secret"}`, "", nil},
		{"charset allowed", "application/json; charset=utf-8", `{"email":"a@b.co","password":"secret"}`, "", nil},
		{"wrong content type", "text/plain", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"no content type", "", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"charset upper case", "Application/JSON; Charset=UTF-8", `{"email":"a@b.co","password":"secret"}`, "", nil},
		{"charset not utf-8", "application/json; charset=latin1", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"other parameter", "application/json; profile=x", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"json patch", "application/json-patch+json", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"json api", "application/vnd.api+json", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"multipart", "multipart/form-data; boundary=x", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"empty parameter", "application/json;", `{"email":"a@b.co","password":"secret"}`, "", nil},
		{"malformed content type", "application/json; charset", `{"email":"a@b.co","password":"secret"}`, apierr.UnsupportedMediaTypeError, nil},
		{"empty body", jsonCT, ``, apierr.InvalidJSONError, nil},
		{"malformed", jsonCT, `{"email":`, apierr.InvalidJSONError, nil},
		{"array", jsonCT, `[{"email":"a@b.co"}]`, apierr.InvalidJSONError, nil},
		{"string", jsonCT, `"hello"`, apierr.InvalidJSONError, nil},
		{"null", jsonCT, `null`, apierr.InvalidJSONError, nil},
		{"trailing data", jsonCT, `{"email":"a@b.co","password":"secret"} {}`, apierr.InvalidJSONError, nil},
		{"missing both", jsonCT, `{}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "email", Issue: "is required"}, {Field: "password", Issue: "is required"}}},
		{"missing password", jsonCT, `{"email":"a@b.co"}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "password", Issue: "is required"}}},
		{"bad email, short password", jsonCT, `{"email":"nope","password":"123"}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "email", Issue: "must be a valid email address"}, {Field: "password", Issue: "must be at least 6 characters long"}}},
		{"password over bcrypt's 72 bytes", jsonCT, `{"email":"a@b.co","password":"` + strings.Repeat("x", 73) + `"}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "password", Issue: "must be at most 72 bytes long"}}},
		{"72 characters but 78 bytes", jsonCT, `{"email":"a@b.co","password":"` + strings.Repeat("é", 6) + strings.Repeat("x", 66) + `"}`,
			apierr.SchemaValidationError, []apierr.FieldError{{Field: "password", Issue: "must be at most 72 bytes long"}}},
		{"72 bytes exactly", jsonCT, `{"email":"a@b.co","password":"` + strings.Repeat("é", 36) + `"}`, "", nil},
		{"duplicate key", jsonCT, `{"email":"a@b.co","password":"secret","email":"c@d.co"}`, apierr.InvalidJSONError, nil},
		{"duplicate key, escaped", jsonCT, `{"email":"a@b.co","password":"secret","\u0065mail":"c@d.co"}`, apierr.InvalidJSONError, nil},
		{"invalid UTF-8", jsonCT, "{\"email\":\"a@b.co\",\"password\":\"secr\xffet\"}", apierr.InvalidJSONError, nil},
		{"unknown field", jsonCT, `{"email":"a@b.co","password":"secret","admin":true}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "admin", Issue: "is not a known field"}}},
		{"operator object", jsonCT, `{"email":{"$gt":""},"password":"secret"}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "email", Issue: "must be a string"}}},
		{"wrong types", jsonCT, `{"email":1,"password":["x"]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "email", Issue: "must be a string"}, {Field: "password", Issue: "must be a string"}}},
		{"explicit null", jsonCT, `{"email":null,"password":"secret"}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "email", Issue: "must not be null"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := request.Decode[creds](tt.ct, []byte(tt.body))
			check(t, err, tt.code, tt.details)
			if tt.code == "" && got.Email != "a@b.co" {
				t.Errorf("decoded %+v", got)
			}
		})
	}
}

func TestDecodeNested(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		code    apierr.Code
		details []apierr.FieldError
	}{
		{"valid", `{"name":"Heat","casts":["Al Pacino"]}`, "", nil},
		{"blank name, empty cast", `{"name":"  ","casts":[""]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "casts[0]", Issue: "must not be blank"}, {Field: "name", Issue: "must not be blank"}}},
		{"empty list", `{"name":"Heat","casts":[]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "casts", Issue: "must have at least 1 item"}}},
		{"too many", `{"name":"Heat","casts":["a","b","c","d"]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "casts", Issue: "must have at most 3 items"}}},
		{"zero-width space in name", `{"name":"Heat\u200b","casts":["a"]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "name", Issue: "must have a visible character and no control or invisible characters"}}},
		{"control character in name", "{\"name\":\"He\\u0007at\",\"casts\":[\"a\"]}", apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "name", Issue: "must have a visible character and no control or invisible characters"}}},
		{"accents and emoji are visible", `{"name":"Amélie 🎬","casts":["a"]}`, "", nil},
		{"duplicate key in a nested object", `{"name":"Heat","casts":[{"a":1,"a":2}]}`, apierr.InvalidJSONError, nil},
		{"numbers in list", `{"name":"Heat","casts":[1,2]}`, apierr.SchemaValidationError,
			[]apierr.FieldError{{Field: "casts", Issue: "must be an array of strings"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := request.Decode[movie](jsonCT, []byte(tt.body))
			check(t, err, tt.code, tt.details)
		})
	}
}

func TestDecodeChecker(t *testing.T) {
	_, err := request.Decode[patch](jsonCT, []byte(`{}`))
	check(t, err, apierr.SchemaValidationError, []apierr.FieldError{{Field: "name", Issue: "at least one field is required"}})
	p, err := request.Decode[patch](jsonCT, []byte(`{"casts":["x"]}`))
	check(t, err, "", nil)
	if p.Casts == nil || p.Name != nil {
		t.Errorf("decoded %+v", p)
	}
	_, err = request.Decode[patch](jsonCT, []byte(`{"casts":[" "]}`))
	check(t, err, apierr.SchemaValidationError, []apierr.FieldError{{Field: "casts[0]", Issue: "must not be blank"}})
}

func check(t *testing.T, err error, code apierr.Code, details []apierr.FieldError) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("got %s (%v), want %s", e.Code, e, code)
	}
	if details != nil && !reflect.DeepEqual(e.Details, details) {
		t.Errorf("details = %+v, want %+v", e.Details, details)
	}
}
