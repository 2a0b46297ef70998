// Package requestid accepts a client's X-Request-ID when it is sane and makes
// one up otherwise, so that every answer and log line can be traced.
package requestid

import "github.com/google/uuid"

// Header is the request and response header carrying the id.
const Header = "X-Request-ID"

// maxLen bounds an accepted client id: ids go into logs and responses.
const maxLen = 128

// Resolve returns the client's id when it is sane (1 to 128 characters of
// letters, digits and -_.:/+=), else a new random one.
func Resolve(client string) string {
	if sane(client) {
		return client
	}
	return uuid.NewString()
}

// sane reports whether a client-supplied id may be echoed and logged as is.
func sane(id string) bool {
	if len(id) == 0 || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}
