// Package keys holds the auth service's signing keys: every PEM file of a
// directory is a key (its file name without .pem is its kid), the
// lexically greatest signs (once it has been published long enough: see
// Rotating), and all are published as the JWKS so that a new key is published
// before it signs and an old one kept until its tokens expire.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// minBits is the smallest RSA key accepted.
const minBits = 2048

// Key is one RSA signing key.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
}

// Set is an immutable set of keys with its signer and its published JWKS.
type Set struct {
	signer Key
	public map[string]*rsa.PublicKey
	jwks   []byte
}

// readDir reads every *.pem file of dir, sorted by name (at least one).
func readDir(dir string) ([]Key, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, fmt.Errorf("JWT_KEYS_DIR %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("JWT_KEYS_DIR %s: no *.pem key files", dir)
	}
	keys := make([]Key, 0, len(paths))
	for _, p := range paths {
		k, err := readKey(p)
		if err != nil {
			return nil, fmt.Errorf("JWT_KEYS_DIR: %w", err)
		}
		keys = append(keys, k)
	}
	// By kid, not by file name: "k1.next.pem" sorts before "k1.pem", but the kid k1.next is the greater.
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.ID, b.ID) })
	return keys, nil
}

// Generate makes a single fresh key, for local runs without a key directory.
func Generate() (*Set, error) {
	pk, err := rsa.GenerateKey(rand.Reader, minBits)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return newSet([]Key{{ID: "generated-" + time.Now().UTC().Format("20060102T150405Z"), Private: pk}}, 0)
}

func readKey(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return Key{}, fmt.Errorf("%s: no PEM block", path)
	}
	var pk *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		pk, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if pk, ok = k.(*rsa.PrivateKey); !ok {
				err = fmt.Errorf("a %T, want an RSA key", k)
			}
		}
	default:
		err = fmt.Errorf("PEM block %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	if pk.N.BitLen() < minBits {
		return Key{}, fmt.Errorf("%s: %d-bit RSA key, want at least %d", path, pk.N.BitLen(), minBits)
	}
	return Key{ID: strings.TrimSuffix(filepath.Base(path), ".pem"), Private: pk}, nil
}

// newSet builds a set from keys sorted by id, keys[signer] signing.
func newSet(keys []Key, signer int) (*Set, error) {
	if len(keys) == 0 {
		return nil, errors.New("no signing keys")
	}
	st := jwkset.NewMemoryStorage()
	s := &Set{signer: keys[signer], public: make(map[string]*rsa.PublicKey, len(keys))}
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(&k.Private.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: k.ID, USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		if err := st.KeyWrite(context.Background(), jwk); err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		s.public[k.ID] = &k.Private.PublicKey
	}
	jwks, err := st.JSONPublic(context.Background())
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	s.jwks = jwks
	return s, nil
}

// SignerID is the kid of the signing key.
func (s *Set) SignerID() string { return s.signer.ID }

// Sign signs claims with the signing key (RS256), kid in the header.
func (s *Set) Sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = s.signer.ID
	return t.SignedString(s.signer.Private)
}

// JWKS is the published key set (public keys only).
func (s *Set) JWKS() []byte { return s.jwks }

// Keyfunc finds the public key of a token's kid, for the service verifying
// its own tokens.
func (s *Set) Keyfunc(context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := s.public[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}
