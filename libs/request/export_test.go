package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"

	"github.com/moviebag/moviebag/libs/apierr"
)

// DecodeReference is Decode as it was before the direct pass (commit
// 0d50c05's decode.go, word for word but for its name and isJSON's):
// FuzzDecode holds Decode to the same answers.
func DecodeReference[T any](contentType string, body []byte) (T, error) {
	var v T
	if !isJSONReference(contentType) {
		return v, apierr.New(apierr.UnsupportedMediaTypeError)
	}
	// encoding/json keeps the last of two equal names: a body saying email
	// twice is an attack or a bug, so the syntax is checked first by the
	// stricter JSON text parser (duplicate names, invalid UTF-8 refused).
	if !jsontext.Value(body).IsValid() {
		return v, apierr.Wrap(apierr.InvalidJSONError, errNotStrictJSON)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		// Not JSON, empty, trailing data, or JSON that is not an object.
		return v, apierr.Wrap(apierr.InvalidJSONError, err)
	}
	fields := fieldsOf(reflect.TypeFor[T]())
	rv := reflect.ValueOf(&v).Elem()
	var details []apierr.FieldError
	for name, msg := range raw {
		f, ok := fields.byName[name]
		if !ok {
			details = append(details, apierr.FieldError{Field: name, Issue: "is not a known field"})
			continue
		}
		if bytes.Equal(bytes.TrimSpace(msg), []byte("null")) {
			details = append(details, apierr.FieldError{Field: name, Issue: "must not be null"})
			continue
		}
		if err := json.Unmarshal(msg, rv.Field(f.index).Addr().Interface()); err != nil {
			details = append(details, apierr.FieldError{Field: name, Issue: "must be " + f.kind})
		}
	}
	if len(details) > 0 {
		sortDetails(details)
		return v, apierr.New(apierr.SchemaValidationError).WithDetails(details...)
	}
	if err := validate.Struct(&v); err != nil {
		var verrs validator.ValidationErrors
		if !errors.As(err, &verrs) {
			return v, fmt.Errorf("validate %T: %w", v, err)
		}
		for _, fe := range verrs {
			details = append(details, apierr.FieldError{Field: fieldPath(fe), Issue: issue(fe)})
		}
	}
	if ch, ok := any(&v).(Checker); ok {
		details = append(details, ch.Check()...)
	}
	if len(details) > 0 {
		sortDetails(details)
		return v, apierr.New(apierr.SchemaValidationError).WithDetails(details...)
	}
	return v, nil
}

// isJSONReference is isJSON as it was before its fast path.
func isJSONReference(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return false
		}
	}
	return true
}
