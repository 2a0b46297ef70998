package apierr

import (
	"errors"
	"strings"
	"time"
)

// FieldError names one offending field of a request and what is wrong with it.
type FieldError struct {
	Field string `json:"field"`
	Issue string `json:"issue"`
}

// Error is the one error type of moviebag: a catalog code, optional per-field
// details and response hints, and the wrapped cause, which is logged and never
// sent to a client.
type Error struct {
	Code    Code
	Details []FieldError
	// RetryAfter, when set, is sent as the Retry-After header (429 and 503).
	RetryAfter time.Duration
	// Allow lists the methods of a 405 answer.
	Allow []string
	// Cause is the underlying failure, for logs only.
	Cause error
}

// New returns an error of the given catalog code.
func New(code Code) *Error { return &Error{Code: code} }

// Wrap returns an error of the given code that keeps cause for the logs.
func Wrap(code Code, cause error) *Error { return &Error{Code: code, Cause: cause} }

// New and Wrap are the two ways to make an Error; the With methods add what
// some answers carry, e.g.
//
//	apierr.New(apierr.SchemaValidationError).WithDetails(apierr.FieldError{Field: "name", Issue: "required"})
//	apierr.Wrap(apierr.ServiceUnavailableError, err).WithRetryAfter(backlog)

// WithDetails sets the per-field details of e and returns e.
func (e *Error) WithDetails(details ...FieldError) *Error {
	e.Details = details
	return e
}

// WithRetryAfter sets the Retry-After of e (429 and 503; at least one
// second is sent, also when it is not set) and returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

// WithAllow sets the methods a 405 names in its Allow header and returns e.
func (e *Error) WithAllow(methods ...string) *Error {
	e.Allow = methods
	return e
}

// Error describes the error for logs: the code and, when there is one, the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	for _, d := range e.Details {
		b.WriteString("; " + d.Field + ": " + d.Issue)
	}
	if e.Cause != nil {
		b.WriteString(": " + e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Status is the HTTP status of the error.
func (e *Error) Status() int { return e.Code.Status() }

// FromError returns the *Error in err's chain when it has a known code;
// anything else becomes an InternalServerError that wraps err (unlike
// errors.As, it never fails). FromError(nil) is nil.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Code.Known() {
		return e
	}
	return Wrap(InternalServerError, err)
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == code
}
