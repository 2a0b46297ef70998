// Package requestid accepts a client's X-Request-ID when it is sane and makes
// one up otherwise, so that every answer and log line can be traced.
package requestid

import (
	"encoding/binary"
	"math/rand/v2"
)

// Header is the request and response header carrying the id.
const Header = "X-Request-ID"

// maxLen bounds an accepted client id: ids go into logs and responses.
const maxLen = 128

// Len is the length of a generated id: a UUID in its 36-character form.
const Len = 36

// Resolve returns the client's id when it is sane (1 to 128 characters of
// letters, digits and -_.:/+=), else a new random one.
func Resolve(client string) string {
	if Sane(client) {
		return client
	}
	var buf [Len]byte
	return string(AppendNew(buf[:0]))
}

// AppendNew appends a new random id to b: a version 4 (random) UUID of RFC
// 9562 in its lower-case 8-4-4-4-12 hex form, as github.com/google/uuid's
// NewString writes it. Its 122 random bits come from the Go runtime's
// generator (math/rand/v2's top-level functions: ChaCha8, per thread, seeded
// from the operating system's entropy), which draws them without a lock or a
// system call: a request id must be unique and not guessable from another,
// not a secret, and crypto/rand's read was 9-13 % of the JWKS answer's own
// time in issue 24's profiles. No allocation.
func AppendNew(b []byte) []byte {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	const hex = "0123456789abcdef"
	var id [Len]byte
	at := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			id[at] = '-'
			at++
		}
		id[at], id[at+1] = hex[c>>4], hex[c&0xf]
		at += 2
	}
	return append(b, id[:]...)
}

// Sane reports whether a client-supplied id may be echoed and logged as is.
func Sane(id string) bool {
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
