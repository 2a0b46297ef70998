// Package sessions keeps login sessions and their refresh tokens in Redis.
//
// A session is named by its id (the sid claim of its access tokens, a
// random UUID) and holds its user, when it began, when it must end at the
// latest, the SHA-256 of its one current refresh token's secret and a
// record of the secrets it has spent. A refresh token is "split": the
// session id, a dot, and a secret of 32 random bytes in base64url
// (<sid>.<secret>, 80 characters). The id is no secret (every access token
// of the session carries it); it only says which session to look in, so a
// token needs no key of its own. The secret is given to the client once and
// never stored: only its hash is. Rotating a session spends its current
// token and makes a new one in one Lua script on the session's key, so of
// two presentations of one token exactly one succeeds; a token of the
// session presented after it was spent is reuse, and ends the whole session
// (RFC 9700 §4.14.2). A token naming a live session with a secret that was
// never the session's is refused and leaves the session alone: knowing a
// session's id is not enough to end it.
//
// The record of spent secrets is bounded: the first 16 bytes of each spent
// secret's hash, most recent first, at most SpentCap of them (8,000 bytes;
// Redis' MEMORY USAGE of a session past the cap is 8,704). A token spent
// more than SpentCap rotations ago is no longer known as the session's: it
// is refused like any unknown token, and does not end the session. At a
// refresh every 15 minutes SpentCap covers the last 5 days and 5 hours.
//
// Keys, under the service's key prefix: one per session, however often it
// is refreshed, and one per user. session:<sid> is a hash (user, began, end,
// cur, spent, and reused once reuse ended it), living REFRESH_IDLE_TTL past
// its last refresh and never past its end; sessions:<user> is a sorted set
// of the user's sids by end, so that ending every session of a user finds
// them. Each command touches one key, so it works on a Redis Cluster as it
// does on one server.
package sessions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/services/auth/internal/opaque"
)

// SpentCap is how many spent secrets a session remembers, most recent
// first: a token spent more than SpentCap rotations ago is refused as
// unknown, not detected as reuse. 500 and not 512: the record (8,000 bytes)
// then fits the allocator's 8 KiB class, and a session past the cap takes
// 8,704 bytes in Redis instead of 10,752.
const SpentCap = 500

// spentLen is how much of a spent secret's hash the record keeps: 128 bits,
// beyond any chance of two secrets sharing it.
const spentLen = 16

// TokenBytes is the size of a refresh token's secret.
const TokenBytes = opaque.Size

// sidLen is the length of a session id: a UUID in its canonical form.
const sidLen = 36

// TokenLen is the length of a refresh token as given to clients: the
// session id, a dot, and TokenBytes in unpadded base64url.
var TokenLen = sidLen + 1 + opaque.Len

// Hash is the SHA-256 of a refresh token's secret, the only form of it kept.
type Hash = opaque.Hash

// Token is a refresh token as presented: the session it names and the hash
// of its secret.
type Token struct {
	SessionID string
	Hash      Hash
}

// ErrMalformed is a string that cannot be a refresh token.
var ErrMalformed = errors.New("malformed refresh token")

// newToken returns a new refresh token of the session sid and the hash of
// its secret.
func newToken(sid string) (string, Hash) {
	secret, h := opaque.New()
	return sid + "." + secret, h
}

// ParseToken reads the refresh token s, or answers ErrMalformed: s must be
// a session id of the form the service makes (a version 4 UUID, canonical:
// lowercase, hyphenated, nothing around it), one dot, and a secret that
// opaque.Parse accepts (one spelling of 32 bytes).
func ParseToken(s string) (Token, error) {
	if len(s) != TokenLen || strings.Count(s, ".") != 1 {
		return Token{}, ErrMalformed
	}
	sid, secret, _ := strings.Cut(s, ".")
	if !validSessionID(sid) {
		return Token{}, ErrMalformed
	}
	h, ok := opaque.Parse(secret)
	if !ok {
		return Token{}, ErrMalformed
	}
	return Token{SessionID: sid, Hash: h}, nil
}

// validSessionID tells whether sid is a session id as the issuer makes them
// (uuid.NewString): a version 4 UUID in its one canonical spelling.
func validSessionID(sid string) bool {
	u, err := uuid.Parse(sid)
	return err == nil && u.String() == sid && u.Version() == 4 && u.Variant() == uuid.RFC4122
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
func (s *Store) userKey(user string) string   { return s.prefix + "sessions:" + user }

// Start records the session sid of user, begun at began, and returns its
// first refresh token. sid must be of the issuer's form (see ParseToken), or
// no token of the session could be presented.
func (s *Store) Start(ctx context.Context, user, sid string, began time.Time) (string, error) {
	if !validSessionID(sid) {
		return "", fmt.Errorf("start session %q: not a version 4 UUID in its canonical form", sid)
	}
	tok, h := newToken(sid)
	now := s.now()
	end := now.Add(s.max)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		k := s.sessionKey(sid)
		p.HSet(ctx, k, "user", user, "began", began.Unix(), "end", end.UnixMilli(), "cur", h[:])
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
	// A token naming a session that never had its secret, or that spent it
	// more than SpentCap rotations ago, is Unknown too, and the session
	// goes on.
	Unknown Outcome = iota
	// Rotated: the token was the session's current one; it is spent and
	// Next replaces it.
	Rotated
	// Reused: the token was spent before (within the last SpentCap
	// rotations), or its session was ended by such a reuse. The session is
	// ended for good: every token of it is refused from now on, and its
	// access tokens must be revoked (by its id). Every later presentation
	// of a token of the session (its current one when reuse ended it, or
	// one of the spent ones remembered) is Reused too (with Detected
	// false), so a revocation that failed can be made again.
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

// Rotate spends the refresh token t and returns its successor, in one
// atomic step on its session (see Outcome).
func (s *Store) Rotate(ctx context.Context, t Token) (Rotation, error) {
	next, nh := newToken(t.SessionID)
	res, err := rotate.Run(ctx, s.rdb, []string{s.sessionKey(t.SessionID)},
		t.Hash[:], nh[:], s.now().UnixMilli(), s.idle.Milliseconds(), spentLen, SpentCap*spentLen).StringSlice()
	if err != nil {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, err)
	}
	if len(res) != 3 {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, fmt.Errorf("rotate answered %q", res))
	}
	if res[0] == "unknown" {
		return Rotation{}, nil
	}
	began, err := strconv.ParseInt(res[2], 10, 64)
	if err != nil {
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, fmt.Errorf("session %s began %q", t.SessionID, res[2]))
	}
	r := Rotation{SessionID: t.SessionID, User: res[1], Began: time.Unix(began, 0)}
	switch res[0] {
	case "rotated":
		r.Outcome, r.Next = Rotated, next
	case "reused", "ended":
		r.Outcome, r.Detected = Reused, res[0] == "reused"
	default:
		return Rotation{}, s.errs.RedisFailed(metrics.Eval, fmt.Errorf("rotate answered %q", res[0]))
	}
	return r, nil
}

// rotate works on the session KEYS[1]: ARGV[1] is the presented secret's
// hash (32 bytes), ARGV[2] its successor's, ARGV[3] now (Unix ms), ARGV[4]
// the idle life (ms), ARGV[5] the length of an entry of the spent record,
// ARGV[6] the most bytes the record keeps. The hash's field cur is the
// current secret's hash, spent the first ARGV[5] bytes of the hashes of the
// secrets spent, most recent first. It answers {outcome,
// user, began}:
//   - "unknown": no session, or past its end (removed), or a secret that is
//     neither the current one nor in the spent record (the session is left
//     as it was);
//   - "rotated": the current secret; it goes to the front of the spent
//     record (the oldest falls off past the cap), the successor is current,
//     and the session lives the idle life longer, never past its end;
//   - "reused": a spent secret; the session is marked ended by reuse and
//     keeps its remaining life, its current secret joins the spent record
//     and none is current any more;
//   - "ended": a secret of the spent record of a session so marked.
var rotate = redis.NewScript(`
local s = redis.call("HMGET", KEYS[1], "user", "began", "end", "cur", "reused", "spent")
if not s[1] then return {"unknown", "", ""} end
local now = tonumber(ARGV[3])
if tonumber(s[3]) <= now then
  redis.call("DEL", KEYS[1])
  return {"unknown", "", ""}
end
local spent = s[6] or ""
local n = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
if not s[5] and s[4] == ARGV[1] then
  redis.call("HSET", KEYS[1], "cur", ARGV[2], "spent", string.sub(string.sub(ARGV[1], 1, n) .. spent, 1, cap))
  redis.call("PEXPIRE", KEYS[1], math.min(tonumber(ARGV[4]), tonumber(s[3]) - now))
  return {"rotated", s[1], s[2]}
end
local h = string.sub(ARGV[1], 1, n)
local from = 1
while true do
  local at = string.find(spent, h, from, true)
  if not at then return {"unknown", "", ""} end
  if (at - 1) % n == 0 then break end -- a match across two entries is none
  from = at + 1
end
if s[5] then return {"ended", s[1], s[2]} end
redis.call("HSET", KEYS[1], "reused", "1", "cur", "", "spent", string.sub(string.sub(s[4], 1, n) .. spent, 1, cap))
return {"reused", s[1], s[2]}
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
