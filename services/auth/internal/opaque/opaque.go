// Package opaque makes and reads auth's opaque tokens (password reset
// tokens, and the secret of a refresh token, which the sessions package
// prefixes with its session's id): 32 random bytes, given out in base64url
// (43 characters, no padding), of which auth keeps only the SHA-256.
package opaque

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Size is a token's length in random bytes.
const Size = 32

// encoding is base64url without padding, refusing non-zero trailing bits, so
// that each token has exactly one spelling.
var encoding = base64.RawURLEncoding.Strict()

// Len is the length of a token as given out.
var Len = encoding.EncodedLen(Size)

// Hash is the SHA-256 of a token, the only form of it kept: knowing it does
// not give the token.
type Hash [sha256.Size]byte

// Hex is h in hex, for a key or a stored field.
func (h Hash) Hex() string { return hex.EncodeToString(h[:]) }

// New returns a fresh token and its hash.
func New() (string, Hash) {
	var b [Size]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return encoding.EncodeToString(b[:]), sha256.Sum256(b[:])
}

// Parse returns the hash of token, or false when token is not of New's
// form: exactly Len characters of base64url that decode to Size bytes, in
// its one spelling (no padding, white space, other alphabet or stray bits
// in the last character).
func Parse(token string) (Hash, bool) {
	if len(token) != Len {
		return Hash{}, false
	}
	var b [Size]byte
	n, err := encoding.Decode(b[:], []byte(token))
	if err != nil || n != Size {
		return Hash{}, false
	}
	return sha256.Sum256(b[:]), true
}
