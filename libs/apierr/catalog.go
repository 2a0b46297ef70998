// Package apierr is the moviebag error library: one catalog of error codes,
// one error type and one JSON envelope, shared by every service so that the
// same failure always reads the same to a client.
package apierr

import "net/http"

// Code is a stable, machine-readable error code. Clients match on it.
type Code string

// The catalog of the seed article, the tutorial this API rebuilds ("Flask
// Rest API Part 4: Exception Handling"): a public contract, so codes,
// statuses and messages are exactly the article's.
const (
	InternalServerError     Code = "InternalServerError"
	SchemaValidationError   Code = "SchemaValidationError"
	MovieAlreadyExistsError Code = "MovieAlreadyExistsError"
	UpdatingMovieError      Code = "UpdatingMovieError"
	DeletingMovieError      Code = "DeletingMovieError"
	MovieNotExistsError     Code = "MovieNotExistsError"
	EmailAlreadyExistsError Code = "EmailAlreadyExistsError"
	UnauthorizedError       Code = "UnauthorizedError"
)

// Errors the seed never had, in the same style.
const (
	InvalidJSONError            Code = "InvalidJSONError"
	InvalidParameterError       Code = "InvalidParameterError"
	BadRequestError             Code = "BadRequestError"
	TokenMissingError           Code = "TokenMissingError"
	TokenInvalidError           Code = "TokenInvalidError"
	TokenExpiredError           Code = "TokenExpiredError"
	TokenRevokedError           Code = "TokenRevokedError"
	NotFoundError               Code = "NotFoundError"
	MethodNotAllowedError       Code = "MethodNotAllowedError"
	RequestTimeoutError         Code = "RequestTimeoutError"
	PayloadTooLargeError        Code = "PayloadTooLargeError"
	UnsupportedMediaTypeError   Code = "UnsupportedMediaTypeError"
	TooManyRequestsError        Code = "TooManyRequestsError"
	RequestHeadersTooLargeError Code = "RequestHeadersTooLargeError"
	ServiceUnavailableError     Code = "ServiceUnavailableError"
	// ResetTokenInvalidError is one answer for an unknown, used or expired
	// password reset token, so that none of the three can be told apart.
	ResetTokenInvalidError Code = "ResetTokenInvalidError"
	// RefreshTokenInvalidError is one answer for an unknown, spent, expired
	// or ended refresh token.
	RefreshTokenInvalidError Code = "RefreshTokenInvalidError"
)

// entry is one row of the catalog.
type entry struct {
	status  int
	message string
	// bearer is the RFC 6750 error attribute of the WWW-Authenticate challenge
	// sent with the code ("" for a plain challenge); only read for 401s.
	bearer string
}

// catalog is the one table from code to status and message.
var catalog = map[Code]entry{
	InternalServerError:     {http.StatusInternalServerError, "Something went wrong", ""},
	SchemaValidationError:   {http.StatusBadRequest, "Request is missing required fields", ""},
	MovieAlreadyExistsError: {http.StatusBadRequest, "Movie with given name already exists", ""},
	UpdatingMovieError:      {http.StatusForbidden, "Updating movie added by other is forbidden", ""},
	DeletingMovieError:      {http.StatusForbidden, "Deleting movie added by other is forbidden", ""},
	MovieNotExistsError:     {http.StatusBadRequest, "Movie with given id doesn't exists", ""},
	EmailAlreadyExistsError: {http.StatusBadRequest, "User with given email address already exists", ""},
	UnauthorizedError:       {http.StatusUnauthorized, "Invalid username or password", ""},

	InvalidJSONError:            {http.StatusBadRequest, "Request body must be a single valid JSON object", ""},
	InvalidParameterError:       {http.StatusBadRequest, "Request has an invalid query parameter", ""},
	BadRequestError:             {http.StatusBadRequest, "Request could not be understood", ""},
	TokenMissingError:           {http.StatusUnauthorized, "Authorization bearer token is missing", ""},
	TokenInvalidError:           {http.StatusUnauthorized, "Authorization token is invalid", "invalid_token"},
	TokenExpiredError:           {http.StatusUnauthorized, "Authorization token has expired", "invalid_token"},
	TokenRevokedError:           {http.StatusUnauthorized, "Authorization token has been revoked", "invalid_token"},
	NotFoundError:               {http.StatusNotFound, "Requested resource was not found", ""},
	MethodNotAllowedError:       {http.StatusMethodNotAllowed, "Method is not allowed for this resource", ""},
	RequestTimeoutError:         {http.StatusRequestTimeout, "Request was not received in time", ""},
	PayloadTooLargeError:        {http.StatusRequestEntityTooLarge, "Request body is too large", ""},
	UnsupportedMediaTypeError:   {http.StatusUnsupportedMediaType, "Request body must be sent as application/json", ""},
	TooManyRequestsError:        {http.StatusTooManyRequests, "Too many requests, try again later", ""},
	RequestHeadersTooLargeError: {http.StatusRequestHeaderFieldsTooLarge, "Request headers are too large", ""},
	ServiceUnavailableError:     {http.StatusServiceUnavailable, "Service is temporarily unavailable, try again later", ""},
	ResetTokenInvalidError:      {http.StatusBadRequest, "Password reset token is invalid or has expired", ""},
	RefreshTokenInvalidError:    {http.StatusUnauthorized, "Refresh token is invalid or has expired", ""},
}

// Codes lists every code of the catalog, for tests and documentation.
func Codes() []Code {
	codes := make([]Code, 0, len(catalog))
	for c := range catalog {
		codes = append(codes, c)
	}
	return codes
}

// Known reports whether c is in the catalog.
func (c Code) Known() bool { _, ok := catalog[c]; return ok }

// Status is the HTTP status of the code; an unknown code is a 500.
func (c Code) Status() int { return c.entry().status }

// Message is the safe, human-readable message of the code.
func (c Code) Message() string { return c.entry().message }

func (c Code) entry() entry {
	if e, ok := catalog[c]; ok {
		return e
	}
	return catalog[InternalServerError]
}

// codeForStatus maps a bare HTTP status (from the framework: unknown route,
// wrong method, body too large, ...) to its catalog code.
func codeForStatus(status int) Code {
	switch status {
	case http.StatusNotFound:
		return NotFoundError
	case http.StatusMethodNotAllowed:
		return MethodNotAllowedError
	case http.StatusRequestTimeout:
		return RequestTimeoutError
	case http.StatusRequestEntityTooLarge:
		return PayloadTooLargeError
	case http.StatusUnsupportedMediaType:
		return UnsupportedMediaTypeError
	case http.StatusTooManyRequests:
		return TooManyRequestsError
	case http.StatusRequestHeaderFieldsTooLarge:
		return RequestHeadersTooLargeError
	case http.StatusUnauthorized:
		return TokenInvalidError
	case http.StatusServiceUnavailable:
		return ServiceUnavailableError
	}
	if status >= 400 && status < 500 {
		return BadRequestError
	}
	return InternalServerError
}
