// Package resettoken makes and reads password reset tokens: 32 random bytes,
// sent to the user in base64url (43 characters, no padding), of which auth
// keeps only the SHA-256.
package resettoken

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

// Len is the length of a token in its sent form.
var Len = encoding.EncodedLen(Size)

// Digest is the form of a token auth stores and looks up: the hex SHA-256
// of its bytes. Knowing it does not give the token.
type Digest string

// New returns a fresh token and its digest.
func New() (token string, digest Digest) {
	var b [Size]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return encoding.EncodeToString(b[:]), digestOf(b[:])
}

// Parse returns the digest of token, or false when token is not a token of
// New's form: exactly Len characters of base64url that decode to Size bytes.
func Parse(token string) (Digest, bool) {
	if len(token) != Len {
		return "", false
	}
	var b [Size]byte
	n, err := encoding.Decode(b[:], []byte(token))
	if err != nil || n != Size {
		return "", false
	}
	return digestOf(b[:]), true
}

func digestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(hex.EncodeToString(sum[:]))
}
