package request_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
)

// label is a named string type: decoded by encoding/json, not by the direct
// pass's string reader.
type label string

// mixed has fields of the kinds no service request has, so that the direct
// pass's encoding/json fallback is held to the field-by-field pass too.
type mixed struct {
	Count  int    `json:"count"`
	Flag   *bool  `json:"flag"`
	Tags   []int  `json:"tags"`
	Named  label  `json:"named"`
	Name   string `json:"name" validate:"omitempty,notblank"`
	Nested struct {
		A string `json:"a"`
	} `json:"nested"`
	Hidden string `json:"-"`
}

// FuzzDecode: whatever the body and content type, decoding either succeeds
// with a valid value or fails with a 4xx catalog error; it never panics.
// And its direct pass answers as the field-by-field pass
// (request.DecodeFieldByField): the same value, the same code and details.
func FuzzDecode(f *testing.F) {
	f.Add("application/json", []byte(`{"email":"a@b.co","password":"secret"}`))
	f.Add("application/json", []byte(`{"name":"Heat","casts":["a"]}`))
	f.Add("application/json", []byte(`{"email":{"$gt":""},"password":null}`))
	f.Add("application/json; charset=utf-8", []byte(`[1,2,3]`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json", []byte(`{"casts":[""," ",1e400]}`))
	f.Add("application/json", []byte(` {"\u006eame" : "H\u00e9at\ud83c\udfac" , "casts" : [ "a" , null ] } `))
	f.Add("application/json", []byte(`{"name":"Heat","casts":[]}`))
	f.Add("application/json", []byte(`{"name":"a","name":"b"}`))
	f.Add("application/json", []byte(`{"name":"a"}{}`))
	f.Add("application/json", []byte(`{"name":"\ud800"}`))
	f.Add("application/json", []byte(`{"count":1.5,"flag":true,"tags":[1,null],"named":"x","nested":{"a":"b"},"Hidden":"h"}`))
	f.Add("application/json", []byte(`{"count":-0,"flag":null,"tags":[],"nested":{"a":"b","a":"c"}}`))
	f.Add("Application/JSON", []byte(`{"email":"a@b.co","password":"secret","email2":1}`))
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

		sameAsFieldByField[creds](t, ct, body)
		sameAsFieldByField[movie](t, ct, body)
		sameAsFieldByField[patch](t, ct, body)
		sameAsFieldByField[mixed](t, ct, body)
	})
}

// sameAsFieldByField fails unless Decode and DecodeFieldByField give the same
// answer for body: the same value when both accept it, else the same
// catalog code and details.
func sameAsFieldByField[T any](t *testing.T, ct string, body []byte) {
	t.Helper()
	got, gotErr := request.Decode[T](ct, body)
	want, wantErr := request.DecodeFieldByField[T](ct, body)
	answer := func(err error) any {
		var e *apierr.Error
		if errors.As(err, &e) {
			return struct {
				Code    apierr.Code
				Details []apierr.FieldError
			}{e.Code, e.Details}
		}
		if err != nil {
			return err.Error()
		}
		return nil
	}
	if !reflect.DeepEqual(answer(gotErr), answer(wantErr)) {
		t.Fatalf("%T from %q (%s): Decode answered %+v, field by field %+v", got, body, ct, answer(gotErr), answer(wantErr))
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%T from %q: Decode made %#v, field by field %#v", got, body, got, want)
	}
}
