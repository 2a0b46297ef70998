package account

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
)

// Token is a signed access token, how long it lives, when it was issued
// (whole seconds) and the session it belongs to, with the session's refresh
// token when the use case gave one (login, refresh).
type Token struct {
	Value        string
	TTL          time.Duration
	IssuedAt     time.Time
	SessionID    string
	RefreshToken string
}

// Issuer mints access tokens for the configured issuer and audience.
type Issuer struct {
	signer Signer
	cfg    token.Config
	ttl    time.Duration
	now    func() time.Time
}

// NewIssuer returns an Issuer signing with signer tokens that live ttl.
func NewIssuer(signer Signer, cfg token.Config, ttl time.Duration) *Issuer {
	return &Issuer{signer: signer, cfg: cfg, ttl: ttl, now: time.Now}
}

// Issue signs a new access token for userID (its hex ObjectID) that starts
// a new session: a jti and a sid of its own.
func (i *Issuer) Issue(userID string) (Token, error) {
	return i.Renew(userID, uuid.NewString())
}

// Renew signs a new access token for userID in its session sid, with a jti
// of its own.
func (i *Issuer) Renew(userID, sid string) (Token, error) {
	now := i.now().Truncate(time.Second) // a NumericDate's precision
	signed, err := i.signer.Sign(token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		SessionID: sid,
	})
	if err != nil {
		return Token{}, apierr.Wrap(apierr.InternalServerError, err)
	}
	return Token{Value: signed, TTL: i.ttl, IssuedAt: now, SessionID: sid}, nil
}
