package app_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// A logout of a token past its exp but inside the verifiers' 30 s leeway
// (still accepted) revokes it: its denylist entry lives until exp + leeway,
// so after the 204 the token is refused.
func TestLogoutInsideExpiryLeewayRevokes(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, filepath.Join(dir, "k1.pem"), false)
	s := startAuth(t, map[string]string{"JWT_KEYS_DIR": dir})
	id := signup(t, s, creds)
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: "moviebag-auth", Subject: id, Audience: jwt.ClaimStrings{"moviebag"}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now.Add(-time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Hour)),
		ExpiresAt: jwt.NewNumericDate(now.Add(-8 * time.Second)),
	})
	tok.Header["kid"] = "k1"
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(raw)...); r.Status != 200 {
		t.Fatalf("a token 8 s past exp, inside the leeway: %d %s, want it accepted", r.Status, r.Body)
	}
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout", "", testkit.Bearer(raw)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(raw)...), apierr.TokenRevokedError)
}

// The client address behind trusted proxies follows the whole chain: every
// X-Forwarded-For line, in order; entries written ip:port or [v6]:port; and
// IPv6 clients counted per /64 (CLIENT_IPV6_PREFIX), so that no client can
// pick its own login bucket or fill that of everyone behind its proxy.
func TestClientAddressFollowsProxyChain(t *testing.T) {
	s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_IP": "2"})
	attempt := func(t *testing.T, headers ...string) testkit.Response {
		t.Helper()
		body := `{"email":"` + uuid.NewString() + `@example.com","password":"whatever"}`
		return testkit.CallAPIRequest(t, testkit.NewRequest(t, "POST", s.URL+"/api/auth/login", body, headers...))
	}
	xff := "X-Forwarded-For"
	// Two allowed, then the third of the same client is limited; each row
	// is one client's three attempts as its proxies write them.
	for name, tries := range map[string][3][]string{
		"a forged first line, the proxy's own second line": {
			{xff, "198.51.100.1", xff, "203.0.113.9"}, {xff, "198.51.100.2", xff, "203.0.113.9"}, {xff, "198.51.100.3, 10.0.0.7", xff, "203.0.113.9"},
		},
		"ip:port entries": {
			{xff, "203.0.113.20:1111"}, {xff, "203.0.113.20:2222, 10.0.0.1:80"}, {xff, "203.0.113.20"},
		},
		"[v6]:port entries": {
			{xff, "[2001:db8:9::5]:443"}, {xff, "[2001:db8:9::5]:444"}, {xff, "2001:db8:9::5"},
		},
		"one IPv6 /64": {
			{xff, "2001:db8:1:2::1"}, {xff, "2001:db8:1:2::2"}, {xff, "[2001:db8:1:2:ffff:ffff:ffff:ffff]:8080"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			for i, h := range tries {
				r := attempt(t, h...)
				if limited := r.Status == 429; limited != (i == 2) {
					t.Fatalf("attempt %d with %q: %d %s", i+1, h, r.Status, r.Body)
				}
			}
		})
	}
	// Clients next to the limited ones have buckets of their own.
	for _, h := range []string{"203.0.113.21:1111", "[2001:db8:a::6]:443", "2001:db8:1:3::1", "198.51.100.1"} {
		if r := attempt(t, xff, h); r.Status == 429 {
			t.Errorf("client %s limited by another's attempts: %d %s", h, r.Status, r.Body)
		}
	}
	t.Run("CLIENT_IPV6_PREFIX=128", func(t *testing.T) {
		s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_IP": "1", "CLIENT_IPV6_PREFIX": "128"})
		for _, h := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
			body := `{"email":"` + uuid.NewString() + `@example.com","password":"whatever"}`
			if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", body, xff, h); r.Status == 429 {
				t.Errorf("%s: %d %s, want each address limited on its own", h, r.Status, r.Body)
			}
		}
	})
}

// Sign-ups are limited per client address (SIGNUP_LIMIT_PER_IP per
// SIGNUP_LIMIT_WINDOW), like logins: past the limit, 429 with Retry-After,
// before any password is hashed.
func TestSignupLimitedPerClientAddress(t *testing.T) {
	s := startAuth(t, map[string]string{"SIGNUP_LIMIT_PER_IP": "3", "SIGNUP_LIMIT_WINDOW": "1h"})
	for i := range 3 {
		signup(t, s, fmt.Sprintf(`{"email":"user%d@example.com","password":"secret123"}`, i))
	}
	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", `{"email":"user9@example.com","password":"secret123"}`)
	testkit.Envelope(t, r, apierr.TooManyRequestsError)
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Errorf("Retry-After = %q, want the seconds until the next sign-up", r.Header.Get("Retry-After"))
	}
	// Another client address has its own allowance.
	r = testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", `{"email":"user9@example.com","password":"secret123"}`,
		"X-Forwarded-For", "203.0.113.50")
	if r.Status != 200 {
		t.Fatalf("another client: %d %s", r.Status, r.Body)
	}
}

// The answer carrying a token is never stored by a cache (RFC 6749 §5.1).
func TestTokenAnswerNotCached(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", creds)
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := r.Header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma %q, want no-cache", got)
	}
}

// Email addresses: control, invisible and quoted forms and compatibility
// characters (fullwidth letters) in the local part are refused, RFC 5321's
// lengths hold (64 octets local part, 254 the address), and the domain is
// stored in one form, IDNA ASCII in lower case, so its Unicode and punycode
// spellings are one account.
func TestEmailAddressesCanonical(t *testing.T) {
	s := startAuth(t, nil)
	for name, email := range map[string]string{
		"zero-width space":         `ada\u200b@example.com`,
		"zero-width space, domain": `ada@exam\u200bple.com`,
		"soft hyphen":              `ada\u00ad@example.com`,
		"word joiner":              `ada\u2060@example.com`,
		"Hangul filler":            `ada\u3164@example.com`,
		"bell":                     `ada\u0007@example.com`,
		"quoted local part":        `\"ada\"@example.com`,
		"quoted, with a space":     `\"a da\"@example.com`,
		"fullwidth local part":     `\uff41\uff44\uff41@example.com`,
		"local part of 65":         strings.Repeat("a", 65) + `@example.com`,
		"local part of 72":         strings.Repeat("a", 72) + `@example.com`,
		"address of 255":           strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com",
		"IP literal":               `ada@[127.0.0.1]`,
	} {
		t.Run(name, func(t *testing.T) {
			env := testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", `{"email":"`+email+`","password":"secret123"}`),
				apierr.SchemaValidationError)
			if len(env.Details) != 1 || env.Details[0].Field != "email" {
				t.Errorf("details %+v, want one naming email", env.Details)
			}
		})
	}
	// The longest address RFC 5321 allows is taken.
	signup(t, s, `{"email":"`+strings.Repeat("a", 64)+"@"+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"."+strings.Repeat("d", 57)+`.com","password":"secret123"}`)

	id := signup(t, s, `{"email":"Ada@B\u00fccher.Example","password":"secret123"}`)
	for _, email := range []string{`ada@xn--bcher-kva.example`, `ADA@XN--BCHER-KVA.EXAMPLE`, `ada@B\u00dcCHER.example`, `ada@bu\u0308cher.example`, `ada@\uff42\u00fc\uff43\uff48\uff45\uff52.example`} {
		t.Run("same account "+email, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", `{"email":"`+email+`","password":"other123"}`),
				apierr.EmailAlreadyExistsError)
			tok := login(t, s, `{"email":"`+email+`","password":"secret123"}`)
			me := testkit.JSON[map[string]any](t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...))
			if me["id"] != id || me["email"] != "ada@xn--bcher-kva.example" {
				t.Errorf("me %v, want id %s and the email in ASCII", me, id)
			}
		})
	}
}

// Auth, like movies, accepts only a sub of the form it issues: the
// upper-case spelling of a user's id is not that user.
func TestOnlyUserIDSubjectsAccepted(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, filepath.Join(dir, "k1.pem"), false)
	s := startAuth(t, map[string]string{"JWT_KEYS_DIR": dir})
	id := signup(t, s, creds)
	for _, sub := range []string{strings.ToUpper(id), "admin"} {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
			Issuer: "moviebag-auth", Subject: sub, Audience: jwt.ClaimStrings{"moviebag"}, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		})
		tok.Header["kid"] = "k1"
		raw, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(raw)...), apierr.TokenInvalidError)
	}
}

// Emails stored before they had one form (a Unicode domain) are put in it at
// start, so their users log in with either spelling; one whose form another
// account already has is left alone.
func TestStoredEmailsCanonicalAtStart(t *testing.T) {
	mdb := testkit.MongoDatabase(t)
	db := mdb.Name()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret123"), 4)
	if err != nil {
		t.Fatal(err)
	}
	coll := mdb.Collection("users")
	ada, bob := bson.NewObjectID(), bson.NewObjectID()
	for id, addr := range map[bson.ObjectID]string{
		ada: "ada@bücher.example", bob: "bob@exämple.example", bson.NewObjectID(): "bob@xn--exmple-cua.example",
	} {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "email", Value: addr},
			{Key: "password_hash", Value: hash}, {Key: "created_at", Value: time.Now().UTC()}}); err != nil {
			t.Fatal(err)
		}
	}
	s := startAuth(t, map[string]string{"MONGO_DATABASE": db, "REDIS_KEY_PREFIX": db + ":"})
	for _, addr := range []string{"ada@xn--bcher-kva.example", "Ada@Bücher.example"} {
		tok := login(t, s, `{"email":"`+addr+`","password":"secret123"}`)
		me := testkit.JSON[map[string]any](t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...))
		if me["id"] != ada.Hex() || me["email"] != "ada@xn--bcher-kva.example" {
			t.Errorf("login as %s: me %v, want %s in ASCII", addr, me, ada.Hex())
		}
	}
	var left struct {
		Email string `bson:"email"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: bob}}).Decode(&left); err != nil || left.Email != "bob@exämple.example" {
		t.Errorf("the email whose form is taken: %q, %v; want it left as it was", left.Email, err)
	}
}
