package jwks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/jwks"
	"github.com/moviebag/moviebag/libs/testkit"
)

// jwksServer serves the public keys of the issuers it is given, like auth's JWKS behind a Service:
// each answer takes latency, and with no issuers it answers 503 (auth not ready yet).
type jwksServer struct {
	mu      sync.Mutex
	body    []byte
	latency time.Duration
	url     string
}

func newJWKSServer(t *testing.T, latency time.Duration) *jwksServer {
	s := &jwksServer{latency: latency}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(s.latency)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		if body == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *jwksServer) publish(t *testing.T, issuers ...*testkit.Issuer) {
	t.Helper()
	st := jwkset.NewMemoryStorage()
	for _, iss := range issuers {
		jwk, err := jwkset.NewJWKFromKey(&iss.Key.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: iss.KID, USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	body, err := st.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// TestJWKSFetchesUnknownKIDOnDemand: a verifier that started while the JWKS was not answering, or
// before a key rotation, fetches the key set again when a token names a kid it does not know, over a
// network that takes milliseconds (not only on loopback), instead of refusing tokens until the
// background refresh minutes later.
func TestJWKSFetchesUnknownKIDOnDemand(t *testing.T) {
	srv := newJWKSServer(t, 30*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys, err := jwks.New(ctx, jwks.Options{
		URL: srv.url, RefreshInterval: time.Hour, UnknownKIDInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(iss *testkit.Issuer) error {
		reqCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := jwt.Parse(iss.Token(t, "someone"), keys(reqCtx))
		return err
	}

	first, second := testkit.NewIssuer(t), testkit.NewIssuer(t)
	// The first fetch, at start, got a 503: the key arrives with the first token that needs it.
	srv.publish(t, first)
	if err := verify(first); err != nil {
		t.Fatalf("token of the key published after start: %v", err)
	}
	// A rotation: a new key is published and used.
	srv.publish(t, first, second)
	testkit.Eventually(t, 3*time.Second, func() error { return verify(second) })
	if err := verify(first); err != nil {
		t.Fatalf("token of the older key after the rotation: %v", err)
	}
}
