package apierr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Envelope is the JSON body of every non-2xx answer of every service. The
// seed's two keys come first.
type Envelope struct {
	Message   string       `json:"message"`
	Status    int          `json:"status"`
	Code      Code         `json:"code"`
	RequestID string       `json:"request_id"`
	Details   []FieldError `json:"details,omitempty"`
}

// Envelope renders e for a client: only catalog data and field details, never
// the cause.
func (e *Error) Envelope(requestID string) Envelope {
	return Envelope{
		Message:   e.Code.Message(),
		Status:    e.Code.Status(),
		Code:      e.Code,
		RequestID: requestID,
		Details:   e.Details,
	}
}

// Marshal encodes the envelope. It cannot fail for catalog data; the fallback
// keeps the contract even so.
func (env Envelope) Marshal() []byte {
	b, err := json.Marshal(env)
	if err != nil {
		return []byte(`{"message":"Something went wrong","status":500,"code":"InternalServerError","request_id":""}`)
	}
	return b
}

// Headers returns the response headers that go with the error, beyond
// Content-Type: WWW-Authenticate for 401s, Retry-After for 429 and 503,
// Allow for 405, Accept and Accept-Encoding for 415.
func (e *Error) Headers() http.Header {
	h := http.Header{}
	switch e.Code.Status() {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="moviebag"`
		if b := e.Code.entry().bearer; b != "" {
			challenge += `, error="` + b + `", error_description="` + e.Code.Message() + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h.Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	case http.StatusMethodNotAllowed:
		if len(e.Allow) > 0 {
			h.Set("Allow", strings.Join(e.Allow, ", "))
		}
	case http.StatusUnsupportedMediaType:
		// What a body must be (RFC 9110 §15.5.16, RFC 7694 §3).
		h.Set("Accept", "application/json")
		h.Set("Accept-Encoding", "identity")
	}
	return h
}

// retryAfterSeconds rounds d up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// FromStatus returns the catalog error for a bare HTTP status produced by a
// framework or proxy rather than by our code.
func FromStatus(status int) *Error { return New(codeForStatus(status)) }

// WriteHTTP writes err as an envelope to a net/http response, for the parts
// that are not Fiber applications (the local gateway, admin endpoints).
func WriteHTTP(w http.ResponseWriter, err *Error, requestID string) {
	for k, v := range err.Headers() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Status())
	_, _ = w.Write(err.Envelope(requestID).Marshal())
}
