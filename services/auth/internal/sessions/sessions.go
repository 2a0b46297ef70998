// Package sessions keeps login sessions and their refresh tokens in Redis.
//
// A session is named by its id (the sid claim of its access tokens) and
// holds its user, when it began, when it must end at the latest, and the
// SHA-256 of its one current refresh token. A refresh token is 32 random
// bytes, given to the client once (base64url) and never stored: only its
// hash is, under a key that names its session. Rotating a session spends
// its current token and makes a new one in one Lua script on the session's
// key, so of two presentations of one token exactly one succeeds; a token
// of the session presented after it was spent is reuse, and ends the whole
// session (RFC 9700 §4.14.2).
//
// Keys, under the service's key prefix: session:<sid> (a hash, living
// REFRESH_IDLE_TTL past its last use and never past its end),
// refresh:<hex SHA-256> (the sid of the token, for as long as a session can
// last) and sessions:<user> (a sorted set of the user's sids by end, so
// that ending every session of a user finds them). Each command touches one
// key, so it works on a Redis Cluster as it does on one server.
package sessions

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/services/auth/internal/opaque"
)

// TokenBytes is the size of a refresh token's secret.
const TokenBytes = opaque.Size

// TokenLen is the length of a refresh token as given to clients: TokenBytes
// in unpadded base64url.
var TokenLen = opaque.Len

// Hash is the SHA-256 of a refresh token, the only form of it kept.
type Hash = opaque.Hash

// ErrMalformed is a string that cannot be a refresh token.
var ErrMalformed = errors.New("malformed refresh token")

// NewToken returns a new refresh token and its hash.
func NewToken() (string, Hash) { return opaque.New() }

// ParseToken returns the hash of the refresh token s (see opaque.Parse), or
// ErrMalformed.
func ParseToken(s string) (Hash, error) {
	h, ok := opaque.Parse(s)
	if !ok {
		return Hash{}, ErrMalformed
	}
	return h, nil
}

// Store keeps the sessions.
type Store struct {
	rdb    redis.UniversalClient
	errs   store.Failures
	prefix string
	idle   time.Duration
	max    time.Duration
	now    func() time.Time
}

// New returns a Store keeping its keys under prefix; a session ends idle
// after its last refresh and max after it began, whichever comes first.
func New(rdb redis.UniversalClient, errs store.Failures, prefix string, idle, maxLife time.Duration) *Store {
	errs.ExpectRedis(metrics.Set, metrics.Get, metrics.Eval, metrics.Delete)
	return &Store{rdb: rdb, errs: errs, prefix: prefix, idle: idle, max: maxLife, now: time.Now}
}

func (s *Store) sessionKey(sid string) string { return s.prefix + "session:" + sid }
func (s *Store) tokenKey(h Hash) string       { return s.prefix + "refresh:" + hex.EncodeToString(h[:]) }
func (s *Store) userKey(user string) string   { return s.prefix + "sessions:" + user }

// Start records the session sid of user, begun at began, and returns its
// first refresh token.
func (s *Store) Start(ctx context.Context, user, sid string, began time.Time) (string, error) {
	tok, h := NewToken()
	now := s.now()
	end := now.Add(s.max)
	// The token's key first: a session is usable only once its token
	// resolves, and a key left by a failure names a session that never was.
	if err := s.rdb.Set(ctx, s.tokenKey(h), sid, s.max).Err(); err != nil {
		return "", s.errs.RedisFailed(metrics.Set, err)
	}
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		k := s.sessionKey(sid)
		p.HSet(ctx, k, "user", user, "began", began.Unix(), "end", end.UnixMilli(), "cur", hex.EncodeToString(h[:]))
		p.PExpire(ctx, k, min(s.idle, s.max))
		u := s.userKey(user)
		p.ZAdd(ctx, u, redis.Z{Score: float64(end.UnixMilli()), Member: sid})
		p.ZRemRangeByScore(ctx, u, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		p.PExpire(ctx, u, s.max) // this session ends last of them all
		return nil
	}); err != nil {
		return "", s.errs.RedisFailed(metrics.Set, err)
	}
	return tok, nil
}

// Outcome is what became of a presented refresh token.
type Outcome int

// The outcomes of Rotate.
const (
	// Unknown: no session has this token, or its session has ended (idle,
	// past its end, logged out or ended with every session of its user).
	Unknown Outcome = iota
	// Rotated: the token was the session's current one; it is spent and
	// Next replaces it.
	Rotated
	// Reused: the token was spent before, or its session was ended by
	// such a reuse. The session is ended for good: every token of it is
	// refused from now on, and its access tokens must be revoked (by its
	// id). Every later presentation of a token of the session is Reused
	// too (with Detected false), so a revocation that failed can be made
	// again.
	Reused
)

// Rotation is the result of Rotate.
type Rotation struct {
	Outcome   Outcome
	SessionID string
	User      string
	// Began is when the session began (whole seconds).
	Began time.Time
	// Next is the new refresh token (Rotated only).
	Next string
	// Detected is true for the Reused outcome that ended the session, false
	// for the presentations after it.
	Detected bool
}

// Rotate spends the refresh token of hash h and returns its successor, in
// one atomic step on the session (see Outcome).
func (s *Store) Rotate(ctx context.Context, h Hash) (Rotation, error) {
	sid, err := s.rdb.Get(ctx, s.tokenKey(h)).Result()
	if errors.Is(err, redis.Nil) {
		return Rotation{}, nil
	}
	if err != nil {
		return Rotation{}, s.errs.RedisFailed(metrics.Get, err)
	}
	next, nh := NewToken()
	// The successor's key before the rotation: once the rotation is made,
	// the successor must resolve, or the client's next refresh would present
	// a token nothing knows while its old one counts as spent.
	if err := s.rdb.Set(ctx, s.tokenKey(nh), sid, s.max).Err(); err != nil {
		return Rotation{}, s.errs.RedisFailed(metrics.Set, err)
	}
	res, err := rotate.Run(ctx, s.rdb, []string{s.sessionKey(sid)},
		hex.EncodeToString(h[:]), hex.EncodeToString(nh[:]), s.now().UnixMilli(), s.idle.Milliseconds()).StringSlice()
	if err != nil {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, err)
	}
	if len(res) != 3 {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, fmt.Errorf("rotate answered %q", res))
	}
	began, err := strconv.ParseInt(res[2], 10, 64)
	if err != nil && res[0] != "unknown" {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, fmt.Errorf("session %s began %q", sid, res[2]))
	}
	r := Rotation{SessionID: sid, User: res[1], Began: time.Unix(began, 0)}
	switch res[0] {
	case "rotated":
		r.Outcome, r.Next = Rotated, next
	case "reused", "ended":
		r.Outcome, r.Detected = Reused, res[0] == "reused"
	default:
		return Rotation{}, nil
	}
	return r, nil
}

// rotate works on the session KEYS[1]: ARGV[1] is the presented token's
// hash, ARGV[2] its successor's, ARGV[3] now (Unix ms), ARGV[4] the idle
// life (ms). It answers {outcome, user, began}: "unknown" (no session, or
// past its end: removed), "reused" (a token that is not the current one:
// the session is marked ended by reuse, and keeps its remaining life), then
// "ended" for every token of a session so marked, or "rotated" (the
// successor is current, the session lives the idle life longer, never past
// its end).
var rotate = redis.NewScript(`
local s = redis.call("HMGET", KEYS[1], "user", "began", "end", "cur", "reused")
if not s[1] then return {"unknown", "", ""} end
if tonumber(s[3]) <= tonumber(ARGV[3]) then
  redis.call("DEL", KEYS[1])
  return {"unknown", "", ""}
end
if s[5] then return {"ended", s[1], s[2]} end
if s[4] ~= ARGV[1] then
  redis.call("HSET", KEYS[1], "reused", "1", "cur", "")
  return {"reused", s[1], s[2]}
end
redis.call("HSET", KEYS[1], "cur", ARGV[2])
redis.call("PEXPIRE", KEYS[1], math.min(tonumber(ARGV[4]), tonumber(s[3]) - tonumber(ARGV[3])))
return {"rotated", s[1], s[2]}
`)

// End ends the session sid of user: none of its refresh tokens is accepted
// from now on.
func (s *Store) End(ctx context.Context, user, sid string) error {
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.sessionKey(sid))
		p.ZRem(ctx, s.userKey(user), sid)
		return nil
	}); err != nil {
		return s.errs.RedisFailed(metrics.Delete, err)
	}
	return nil
}

// EndUser ends every session of user but keep (when not empty).
func (s *Store) EndUser(ctx context.Context, user, keep string) error {
	sids, err := s.rdb.ZRange(ctx, s.userKey(user), 0, -1).Result()
	if err != nil {
		return s.errs.RedisFailed(metrics.Get, err)
	}
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sid := range sids {
			if sid == keep {
				continue
			}
			p.Del(ctx, s.sessionKey(sid))
			p.ZRem(ctx, s.userKey(user), sid)
		}
		return nil
	}); err != nil {
		return s.errs.RedisFailed(metrics.Delete, err)
	}
	return nil
}
