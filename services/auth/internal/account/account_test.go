package account_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/account"
	"github.com/moviebag/moviebag/services/auth/internal/password"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// calls records every call the use cases make on their dependencies.
type calls []string

type fakeUsers struct{ c *calls }

func (f fakeUsers) Create(context.Context, string, []byte) (users.User, error) {
	*f.c = append(*f.c, "users.Create")
	return users.User{}, nil
}

func (f fakeUsers) ByEmail(context.Context, string) (users.User, error) {
	*f.c = append(*f.c, "users.ByEmail")
	return users.User{}, users.ErrNotFound
}

type fakeLimit struct {
	c    *calls
	name string
}

func (f fakeLimit) Hit(context.Context, string) (bool, time.Duration, error) {
	*f.c = append(*f.c, f.name+".Hit")
	return true, 0, nil
}

func (f fakeLimit) Forgive(context.Context, string) error {
	*f.c = append(*f.c, f.name+".Forgive")
	return nil
}

// refusing is a hasher with no room: every admission is refused.
type refusing struct{ c *calls }

func (r refusing) Admit(context.Context) (*password.Permit, error) {
	*r.c = append(*r.c, "hasher.Admit")
	return nil, apierr.Wrap(apierr.ServiceUnavailableError, errors.New("no room"))
}

// A login or sign-up whose password work is refused costs nothing else: no
// limit is counted and no user is read or written (in a login storm each
// of those calls would queue too), and no attempt is recorded.
func TestRefusedAdmissionCallsNothingElse(t *testing.T) {
	var c calls
	var recorded []account.LoginResult
	login := &account.Login{
		Users: fakeUsers{&c}, Hasher: refusing{&c},
		ClientLimit: fakeLimit{&c, "client"}, EmailLimit: fakeLimit{&c, "email"},
		Record: func(r account.LoginResult) { recorded = append(recorded, r) },
	}
	cmd := account.LoginCommand{ClientKey: "203.0.113.1", Email: "ada@example.com", Password: "secret123"}
	if _, err := login.Handle(context.Background(), cmd); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("login: %v, want ServiceUnavailableError", err)
	}
	signup := &account.Signup{Users: fakeUsers{&c}, Hasher: refusing{&c}, ClientLimit: fakeLimit{&c, "client"}}
	if _, err := signup.Handle(context.Background(), account.SignupCommand(cmd)); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("signup: %v, want ServiceUnavailableError", err)
	}
	if len(c) != 2 || c[0] != "hasher.Admit" || c[1] != "hasher.Admit" {
		t.Errorf("calls %v, want only the two admissions", c)
	}
	if len(recorded) != 0 {
		t.Errorf("recorded %v for logins that were never admitted", recorded)
	}
}

type rsaSigner struct{ key *rsa.PrivateKey }

func (s rsaSigner) Sign(claims jwt.Claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	return tok.SignedString(s.key)
}

// Issue mints every claim a verifier requires, for the configured issuer
// and audience, living the configured time, with a jti of its own.
func TestIssueMintsAccessToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 15 * time.Minute
	issuer := account.NewIssuer(rsaSigner{key}, token.Config{Issuer: "moviebag-auth", Audience: "moviebag"}, ttl)
	const sub = "0123456789abcdef01234567"
	v := token.NewVerifier(func(context.Context) jwt.Keyfunc {
		return func(*jwt.Token) (any, error) { return &key.PublicKey, nil }
	}, token.Policy{Issuer: "moviebag-auth", Audience: "moviebag", Algorithms: []string{"RS256"}}, notRevoked{})
	seen := map[string]bool{}
	for range 2 {
		tok, err := issuer.Issue(sub)
		if err != nil {
			t.Fatal(err)
		}
		if tok.TTL != ttl {
			t.Errorf("TTL %s, want %s", tok.TTL, ttl)
		}
		claims, err := v.Verify(context.Background(), tok.Value)
		if err != nil {
			t.Fatalf("the verifier refuses an issued token: %v", err)
		}
		if claims.Subject != sub || claims.NotBefore == nil || claims.IssuedAt == nil ||
			claims.ExpiresAt.Sub(claims.IssuedAt.Time) != ttl {
			t.Errorf("claims %+v", claims)
		}
		if seen[claims.ID] {
			t.Errorf("jti %q issued twice", claims.ID)
		}
		seen[claims.ID] = true
	}
}

type notRevoked struct{}

func (notRevoked) Denies(context.Context, *token.Claims) (bool, error) { return false, nil }
