package apierr

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	en := e.Code.entry() // one catalog lookup for the message and the status
	return Envelope{
		Message:   en.message,
		Status:    en.status,
		Code:      e.Code,
		RequestID: requestID,
		Details:   e.Details,
	}
}

// Marshal encodes the envelope: the bytes encoding/json writes for it (HTML
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD), without
// reflection and in one allocation; FuzzEnvelope holds the two equal.
func (env Envelope) Marshal() []byte {
	n := 64 + len(env.Message) + len(env.Code) + len(env.RequestID)
	for _, d := range env.Details {
		n += 32 + len(d.Field) + len(d.Issue)
	}
	return env.AppendJSON(make([]byte, 0, n))
}

// AppendJSON appends the envelope as Marshal encodes it to b and returns the
// extended slice: with b on the caller's stack, an answer's body is encoded
// without allocating.
func (env Envelope) AppendJSON(b []byte) []byte {
	b = append(b, `{"message":`...)
	b = appendString(b, env.Message)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(env.Status), 10)
	b = append(b, `,"code":`...)
	b = appendString(b, string(env.Code))
	b = append(b, `,"request_id":`...)
	b = appendString(b, env.RequestID)
	if len(env.Details) > 0 {
		b = append(b, `,"details":[`...)
		for i, d := range env.Details {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"field":`...)
			b = appendString(b, d.Field)
			b = append(b, `,"issue":`...)
			b = appendString(b, d.Issue)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it by default.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // other control characters and <, >, &
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...) // as the character, like encoding/json
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Headers returns the response headers that go with the error, beyond
// Content-Type: WWW-Authenticate for 401s, Retry-After for 429 and 503,
// Allow for 405, Accept and Accept-Encoding for 415.
func (e *Error) Headers() http.Header {
	h := http.Header{}
	e.SetHeaders(h.Set)
	return h
}

// SetHeaders calls set with the name and value of each header Headers
// returns, in that order, without building a map: what a server that
// writes headers one by one (Fiber's c.Set) calls per answer.
func (e *Error) SetHeaders(set func(name, value string)) {
	switch e.Code.Status() {
	case http.StatusUnauthorized:
		set("WWW-Authenticate", challenges[e.Code])
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		set("Retry-After", retryAfterSeconds(e.RetryAfter))
	case http.StatusMethodNotAllowed:
		if len(e.Allow) > 0 {
			set("Allow", strings.Join(e.Allow, ", "))
		}
	case http.StatusUnsupportedMediaType:
		// What a body must be (RFC 9110 §15.5.16, RFC 7694 §3).
		set("Accept", "application/json")
		set("Accept-Encoding", "identity")
	}
}

// challenges are the WWW-Authenticate challenges of the 401 codes (RFC
// 6750 §3), made once: the code's error attribute and its message when it
// has one, else the bare challenge.
var challenges = func() map[Code]string {
	m := map[Code]string{}
	for code, e := range catalog {
		if e.status != http.StatusUnauthorized {
			continue
		}
		m[code] = `Bearer realm="moviebag"`
		if e.bearer != "" {
			m[code] += `, error="` + e.bearer + `", error_description="` + e.message + `"`
		}
	}
	return m
}()

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
