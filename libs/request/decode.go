// Package request decodes and validates JSON request bodies strictly: one
// JSON object, valid UTF-8 and no name twice in an object (RFC 7493), no
// unknown fields, no wrong types, no nulls, then the struct's `validate`
// tags; every offending field becomes a detail of one SchemaValidationError.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"
	"github.com/go-playground/validator/v10/non-standard/validators"
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/text"
)

// Checker is implemented by request types with rules the tags cannot say,
// such as "at least one field".
type Checker interface {
	Check() []apierr.FieldError
}

// DecodeValid decodes the request body into a T; see Decode. It reads the
// body as it came (c.Request().Body()), never through c.Body(), which would
// decompress it with no size limit: bodies with a content coding are refused
// before any handler runs (server.New).
func DecodeValid[T any](c *fiber.Ctx) (T, error) {
	return Decode[T](c.Get(fiber.HeaderContentType), c.Request().Body())
}

// Decode checks that contentType is JSON and body one JSON object whose
// fields all belong to T and have T's types, then validates the result.
// T must be a struct type with json tags.
//
// A body that is all right but for validation, the common case, is decoded
// in one pass straight into the T (decodeDirect); anything else is decoded
// again by the field-by-field pass (decodeFields), which names every
// offending field. Both give the same answer to every body (FuzzDecode).
func Decode[T any](contentType string, body []byte) (T, error) {
	return decode[T](contentType, body, true)
}

// decode is Decode; without direct, every body goes through the
// field-by-field pass (the tests hold the two passes to the same answers).
func decode[T any](contentType string, body []byte, direct bool) (T, error) {
	var v T
	if !isJSON(contentType) {
		return v, apierr.New(apierr.UnsupportedMediaTypeError)
	}
	fields := fieldsOf(reflect.TypeFor[T]())
	if !direct || !decodeDirect(body, reflect.ValueOf(&v).Elem(), fields) {
		v = *new(T) // whatever the direct pass set before it gave up
		if err := decodeFields(body, reflect.ValueOf(&v).Elem(), fields); err != nil {
			return v, err
		}
	}
	var details []apierr.FieldError
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

// decodeFields decodes body into rv field by field, naming every offending
// field: the syntax is checked first by the strict JSON text parser
// (encoding/json keeps the last of two equal names: a body saying email
// twice is an attack or a bug; invalid UTF-8 is refused too), then each
// member is decoded on its own (encoding/json) into its field.
func decodeFields(body []byte, rv reflect.Value, fields structFields) error {
	if !jsontext.Value(body).IsValid() {
		return apierr.Wrap(apierr.InvalidJSONError, errNotStrictJSON)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		// Not JSON, empty, trailing data, or JSON that is not an object.
		return apierr.Wrap(apierr.InvalidJSONError, err)
	}
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
		return apierr.New(apierr.SchemaValidationError).WithDetails(details...)
	}
	return nil
}

// directDecoder is one decodeDirect: what it reuses from one body to the
// next (the parser, a buffer for escaped names) and the body it reads.
type directDecoder struct {
	in   bytes.Buffer // the body, read in place by dec
	dec  *jsontext.Decoder
	name []byte // an escaped member name, unquoted
	// text is the body as one string, made when the first string value is
	// read: every string without escapes is a piece of it, one allocation
	// for all of them.
	body []byte
	text string
	// list collects a list's strings before the list gets exactly their
	// number of elements.
	list [16]string
}

var directDecoders = sync.Pool{New: func() any {
	d := &directDecoder{}
	d.dec = jsontext.NewDecoder(&d.in)
	return d
}}

// decodeDirect decodes body straight into rv in one pass, and reports
// whether it could: body is one JSON object with unique names in valid
// UTF-8 (the strict parser's rules, as decodeFields), nothing after it, each
// member a field of rv, none null, each of its field's type. It gives up at
// the first thing that is not so, leaving the answer to decodeFields.
// Strings and lists of strings (every request field of the services) are
// read from the parser's tokens; a field of another type is decoded with
// encoding/json, as decodeFields does.
func decodeDirect(body []byte, rv reflect.Value, fields structFields) bool {
	d := directDecoders.Get().(*directDecoder)
	d.in = *bytes.NewBuffer(body) // read in place, not copied
	d.body = body
	d.dec.Reset(&d.in)
	defer func() {
		// Let go of body and of what was read from it.
		d.in, d.body, d.text, d.list = bytes.Buffer{}, nil, "", [16]string{}
		d.dec.Reset(&d.in)
		directDecoders.Put(d)
	}()
	dec := d.dec
	if dec.PeekKind() != '{' {
		return false
	}
	if _, err := dec.ReadToken(); err != nil {
		return false
	}
	for dec.PeekKind() == '"' {
		raw, err := dec.ReadValue()
		if err != nil {
			return false
		}
		name, ok := d.unquoteName(raw)
		if !ok {
			return false
		}
		f, ok := fields.byName[string(name)]
		if !ok || dec.PeekKind() == 'n' {
			return false
		}
		if !d.decodeInto(f, rv.Field(f.index)) {
			return false
		}
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return false
	}
	_, err := dec.ReadToken()
	return errors.Is(err, io.EOF)
}

// unquoteName returns the name a member's raw (quoted) name stands for.
func (d *directDecoder) unquoteName(raw jsontext.Value) ([]byte, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	name, err := jsontext.AppendUnquote(d.name[:0], raw)
	d.name = name
	return name, err == nil
}

// decodeInto decodes the next value into the field fv, and reports whether
// it is of the field's type.
func (d *directDecoder) decodeInto(f field, fv reflect.Value) bool {
	switch f.decode {
	case decodeString, decodeStringPtr:
		s, ok := d.readString()
		return ok && set(fv, f.decode == decodeStringPtr, s)
	case decodeStrings, decodeStringsPtr:
		list, ok := d.readStrings()
		return ok && set(fv, f.decode == decodeStringsPtr, list)
	}
	raw, err := d.dec.ReadValue()
	return err == nil && json.Unmarshal(raw, fv.Addr().Interface()) == nil
}

// set stores v in the field fv, of type E or (ptr) *E, and returns true.
func set[E any](fv reflect.Value, ptr bool, v E) bool {
	if !ptr {
		*fv.Addr().Interface().(*E) = v
		return true
	}
	p := new(E) // not &v: v would be on the heap for every field
	*p = v
	*fv.Addr().Interface().(**E) = p
	return true
}

// readString reads a JSON string.
func (d *directDecoder) readString() (string, bool) {
	if d.dec.PeekKind() != '"' {
		return "", false
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		if d.text == "" {
			d.text = string(d.body)
		}
		end := int(d.dec.InputOffset()) // just after raw's closing quote
		return d.text[end-len(raw)+1 : end-1], true
	}
	s, err := jsontext.AppendUnquote(nil, raw)
	return string(s), err == nil
}

// readStrings reads a JSON array of strings; a null in it is "", as
// encoding/json leaves a list element it is told is null.
func (d *directDecoder) readStrings() ([]string, bool) {
	if d.dec.PeekKind() != '[' {
		return nil, false
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, false
	}
	list := d.list[:0]
	for {
		switch d.dec.PeekKind() {
		case ']':
			if _, err := d.dec.ReadToken(); err != nil {
				return nil, false
			}
			// [] is an empty list, not a missing one: never nil.
			return append(make([]string, 0, len(list)), list...), true
		case 'n':
			if _, err := d.dec.ReadToken(); err != nil {
				return nil, false
			}
			list = append(list, "")
		default:
			s, ok := d.readString()
			if !ok {
				return nil, false
			}
			list = append(list, s)
		}
	}
}

var errNotStrictJSON = errors.New("body is not one JSON value with unique names in valid UTF-8")

// isJSON reports whether contentType is application/json, with no parameter
// but charset=utf-8 (JSON is UTF-8, RFC 8259 §8.1). Other JSON-based types
// (application/json-patch+json, application/vnd.api+json, ...) mean other
// semantics than a plain object, so they are refused like any other type.
func isJSON(contentType string) bool {
	if contentType == "application/json" { // what nearly every client sends: nothing to parse
		return true
	}
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

// validate is safe for concurrent use and caches struct metadata.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(jsonName)
	if err := v.RegisterValidation("notblank", validators.NotBlank); err != nil {
		panic(err) // only a programming error: the tag name is a constant
	}
	if err := v.RegisterValidation("maxbytes", maxBytes); err != nil {
		panic(err)
	}
	if err := v.RegisterValidation("visible", visible); err != nil {
		panic(err)
	}
	return v
}

// maxBytes is the tag maxbytes=N: a string of at most N bytes in UTF-8
// (validator's max counts characters; bcrypt's limit is 72 bytes).
func maxBytes(fl validator.FieldLevel) bool {
	n, err := strconv.Atoi(fl.Param())
	if err != nil {
		panic(fmt.Sprintf("maxbytes=%q: not an integer", fl.Param())) // a programming error in a tag
	}
	return fl.Field().Kind() == reflect.String && len(fl.Field().String()) <= n
}

// visible is the tag visible: a string that, once surrounding white space
// (tabs and newlines included) is trimmed, has at least one visible
// character (text.HasVisible: a letter, digit, punctuation mark or symbol)
// and no invisible one (text.Invisible: control and format characters, line
// and paragraph separators, every Unicode Default_Ignorable_Code_Point such
// as zero-width spaces, variation selectors and Hangul fillers), which would
// make names that look alike, or look like nothing, differ. The handler
// trims the value.
func visible(fl validator.FieldLevel) bool {
	if fl.Field().Kind() != reflect.String {
		return false
	}
	s := strings.TrimSpace(fl.Field().String())
	return text.HasVisible(s) && !text.HasInvisible(s)
}

type field struct {
	index  int
	kind   string // "a string", "an array of strings", ... for messages
	decode decodeKind
}

// decodeKind is how decodeDirect reads a field.
type decodeKind int

const (
	decodeOther      decodeKind = iota // with encoding/json
	decodeString                       // string
	decodeStringPtr                    // *string
	decodeStrings                      // []string
	decodeStringsPtr                   // *[]string
)

// decodeKindOf returns how decodeDirect reads a field of type t.
func decodeKindOf(t reflect.Type) decodeKind {
	switch t {
	case reflect.TypeFor[string]():
		return decodeString
	case reflect.TypeFor[*string]():
		return decodeStringPtr
	case reflect.TypeFor[[]string]():
		return decodeStrings
	case reflect.TypeFor[*[]string]():
		return decodeStringsPtr
	}
	return decodeOther
}

type structFields struct{ byName map[string]field }

var fieldCache sync.Map // reflect.Type → structFields

func fieldsOf(t reflect.Type) structFields {
	if sf, ok := fieldCache.Load(t); ok {
		return sf.(structFields)
	}
	sf := structFields{byName: map[string]field{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		sf.byName[name] = field{index: i, kind: describe(f.Type), decode: decodeKindOf(f.Type)}
	}
	fieldCache.Store(t, sf)
	return sf
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		elem := strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ")
		return "an array of " + elem + "s"
	default:
		return "an object"
	}
}

// fieldPath is the JSON path of a failed field without the struct's name:
// "email", "casts[2]".
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return ns
}

func issue(fe validator.FieldError) string {
	isList := fe.Kind() == reflect.Slice || fe.Kind() == reflect.Array
	switch fe.Tag() {
	case "required", "required_without_all":
		return "is required"
	case "notblank":
		return "must not be blank"
	case "email":
		return "must be a valid email address"
	case "min":
		if isList {
			return "must have at least " + count(fe.Param(), "item")
		}
		return "must be at least " + count(fe.Param(), "character") + " long"
	case "max":
		if isList {
			return "must have at most " + count(fe.Param(), "item")
		}
		return "must be at most " + count(fe.Param(), "character") + " long"
	case "visible":
		return "must have a visible character and no control or invisible characters"
	case "maxbytes":
		return "must be at most " + count(fe.Param(), "byte") + " long"
	case "unique":
		return "must not repeat items"
	default:
		return "is invalid (" + fe.Tag() + ")"
	}
}

// count is n units, in the singular for one: "1 item", "3 items".
func count(n, unit string) string {
	if n == "1" {
		return n + " " + unit
	}
	return n + " " + unit + "s"
}

// sortDetails puts details in a stable order for clients and tests.
func sortDetails(d []apierr.FieldError) {
	slices.SortStableFunc(d, func(a, b apierr.FieldError) int { return strings.Compare(a.Field, b.Field) })
}
