// Package denylist keeps revoked access tokens in Redis, written by auth,
// and mirrors them in memory in every service that verifies tokens: token
// and session ids (logout, a refresh token's reuse) and per-user cutoffs
// (logout everywhere, password changes).
package denylist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/token"
)

// Denylist keeps the ids of revoked tokens in Redis until they expire, and
// each user's cutoff (RevokeUser: every token of the user issued before it
// is refused), and, once Follow runs, a local mirror of both that answers
// Denies without a network round trip.
//
// The mirror is fed by a Redis pub/sub channel that Revoke publishes on, in
// every replica of every service sharing the key prefix. Each time the
// subscription is (re)established it is trusted only after a full resync (a
// SCAN of the denylist keys), because messages published while a subscriber
// was away are lost. Until then, and whenever the subscription breaks,
// Denies asks Redis per request, which fails closed (a 503) when Redis
// cannot be asked.
type Denylist struct {
	rdb        redis.UniversalClient
	errs       store.Failures
	prefix     string // of the keys of revoked token ids
	userPrefix string // of the keys of user cutoffs
	channel    string // revocations are published here

	// mirror: jti → expiry in Unix milliseconds (local clock); trusted only
	// while synced.
	mu     sync.RWMutex
	mirror map[string]int64
	// users: user id → the cutoff, mirrored like the token ids.
	users  map[string]cutoff
	synced atomic.Bool
	// heard is when the subscription last delivered anything (a message or
	// a pong), in Unix nanoseconds; trustFor is how long after that the
	// mirror is still trusted. A connection that dies silently, or is being
	// redialled inside the client, stops being trusted within trustFor.
	heard    atomic.Int64
	trustFor atomic.Int64
	// resyncs counts completed full resyncs (tests wait on it).
	resyncs atomic.Int64
}

// cutoff is a user's cutoff in the mirror: tokens issued before the Unix
// second before are refused, but those of the session keep, which only
// keepBefore (the cutoff before this one) refuses; the entry is worthless
// from exp (Unix milliseconds, local clock).
type cutoff struct {
	before, keepBefore int64
	keep               string
	exp                int64
}

// parseCutoff reads a cutoff as stored: "<before>" or
// "<before>:<keepBefore>:<keep>".
func parseCutoff(v string) (cutoff, bool) {
	parts := strings.SplitN(v, ":", 3)
	before, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return cutoff{}, false
	}
	c := cutoff{before: before}
	if len(parts) == 3 {
		if c.keepBefore, err = strconv.ParseInt(parts[1], 10, 64); err != nil || parts[2] == "" {
			return cutoff{}, false
		}
		c.keep = parts[2]
	}
	return c, true
}

// refuses reports whether c refuses the token of claims (a token without
// iat is refused).
func (c cutoff) refuses(claims *token.Claims) bool {
	before := c.before
	if c.keep != "" && claims.SessionID == c.keep {
		before = c.keepBefore
	}
	return claims.IssuedAt == nil || claims.IssuedAt.Unix() < before
}

// userPayload starts the published message of a user cutoff:
// "user:<ttl ms>:<user id>:<cutoff as stored>". A token revocation is
// "<ttl ms>:<jti>".
const userPayload = "user:"

// New returns a denylist keeping its keys under keyPrefix +
// "denylist:" (token ids) and keyPrefix + "notbefore:" (user cutoffs) and
// publishing revocations on the channel keyPrefix + "revocations"; its
// Redis failures are counted and mapped by errs.
func New(rdb redis.UniversalClient, keyPrefix string, errs store.Failures) *Denylist {
	errs.ExpectRedis(metrics.Set, metrics.Eval, metrics.Get, metrics.Exists, metrics.Publish)
	return &Denylist{rdb: rdb, errs: errs, prefix: keyPrefix + "denylist:", userPrefix: keyPrefix + "notbefore:",
		channel: keyPrefix + "revocations", mirror: map[string]int64{}, users: map[string]cutoff{}}
}

// RevokeUser refuses every token of user issued before the Unix second
// before (its iat is earlier), at every follower, but those of the session
// keep (when not empty), which stay as refused as they were. ttl is the
// longest life of a token (the issuer's TTL): the cutoff is kept that and
// the verifiers' leeway (token.Leeway) longer than now, after which no token it refuses is
// still valid. A later cutoff replaces an earlier one, never the reverse.
func (d *Denylist) RevokeUser(ctx context.Context, user string, before time.Time, ttl time.Duration, keep string) error {
	ttl += token.Leeway
	// The key first: a follower resyncing after a missed message finds it.
	// A cutoff only moves forward, also when two are set at once.
	stored, err := raiseCutoff.Run(ctx, d.rdb, []string{d.userPrefix + user}, before.Unix(), ttl.Milliseconds(), keep).Text()
	if err != nil {
		return d.errs.RedisFailed(metrics.Eval, err)
	}
	c, ok := parseCutoff(stored)
	if !ok {
		return d.errs.RedisFailed(metrics.Eval, fmt.Errorf("cutoff of user %s stored as %q", user, stored))
	}
	d.rememberUser(user, c, time.Now().Add(ttl).UnixMilli())
	payload := userPayload + strconv.FormatInt(ttl.Milliseconds(), 10) + ":" + user + ":" + stored
	if err := d.rdb.Publish(ctx, d.channel, payload).Err(); err != nil {
		return d.errs.RedisFailed(metrics.Publish, err)
	}
	return nil
}

// raiseCutoff sets KEYS[1] to the cutoff ARGV[1] with a TTL of ARGV[2] ms,
// keeping the session ARGV[3] (when not empty) under the cutoff it replaces,
// unless it holds a cutoff as late already; it returns the cutoff stored.
var raiseCutoff = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
local cur = 0
if v then cur = tonumber(string.match(v, "^%d+")) or 0 end
if cur >= tonumber(ARGV[1]) then
  redis.call("PEXPIRE", KEYS[1], ARGV[2], "GT")
  return v
end
local new = ARGV[1]
if ARGV[3] ~= "" then
  local keepBefore = cur
  if v then
    local b, kb, k = string.match(v, "^(%d+):(%d+):(.+)$")
    if k == ARGV[3] then keepBefore = tonumber(kb) end
  end
  new = ARGV[1] .. ":" .. keepBefore .. ":" .. ARGV[3]
end
redis.call("SET", KEYS[1], new, "PX", ARGV[2])
return new
`)

// Denies reports whether the token of claims is refused: its jti revoked,
// its session revoked (its sid, put on the denylist by Revoke like a jti:
// a logout, or a refresh token's reuse, ends every token of the session),
// or issued before its user's cutoff (a token without iat is refused once
// its user has one). It answers from the mirror while it is in sync, else
// from Redis, and fails closed (ServiceUnavailableError) when Redis cannot
// be asked.
func (d *Denylist) Denies(ctx context.Context, claims *token.Claims) (bool, error) {
	sid := claims.SessionID
	if sid == claims.ID {
		sid = ""
	}
	if d.Synced() {
		now := time.Now().UnixMilli()
		d.mu.RLock()
		exp, revoked := d.mirror[claims.ID]
		sidExp, sidRevoked := d.mirror[sid]
		c, cut := d.users[claims.Subject]
		d.mu.RUnlock()
		return (revoked && exp > now) || (sid != "" && sidRevoked && sidExp > now) ||
			(cut && c.exp > now && c.refuses(claims)), nil
	}
	pipe := d.rdb.Pipeline()
	exists := []*redis.IntCmd{pipe.Exists(ctx, d.prefix+claims.ID)}
	if sid != "" { // a command of its own: on a cluster the two keys are in different slots
		exists = append(exists, pipe.Exists(ctx, d.prefix+sid))
	}
	get := pipe.Get(ctx, d.userPrefix+claims.Subject)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		for _, e := range exists {
			if e.Err() != nil {
				return false, d.errs.RedisFailed(metrics.Exists, err)
			}
		}
		return false, d.errs.RedisFailed(metrics.Get, err)
	}
	for _, e := range exists {
		if e.Val() > 0 {
			return true, nil
		}
	}
	if errors.Is(get.Err(), redis.Nil) {
		return false, nil
	}
	c, ok := parseCutoff(get.Val())
	if !ok {
		return false, d.errs.RedisFailed(metrics.Get, fmt.Errorf("cutoff of user %s stored as %q", claims.Subject, get.Val()))
	}
	return c.refuses(claims), nil
}

// Revoke puts jti on the denylist and tells every follower; a session id
// (sid) is revoked the same way, with the longest life of a token of the
// session as ttl (token ids and session ids are both random UUIDs, so they
// share the one key space). ttl is the token's remaining life, the time
// until its exp: negative for a token past
// exp that verifiers still accept within their leeway (token.Leeway). The entry lives that
// leeway longer than the token, so no verifier accepts the token after the
// entry is gone; a token past exp + leeway needs no entry. When Redis
// cannot be asked the logout fails (503) rather than pretending.
func (d *Denylist) Revoke(ctx context.Context, jti string, ttl time.Duration) error {
	ttl += token.Leeway
	if ttl < time.Millisecond { // Redis keeps nothing for less
		return nil
	}
	// The key first: a follower resyncing after a missed message finds it.
	if err := d.rdb.Set(ctx, d.prefix+jti, 1, ttl).Err(); err != nil {
		return d.errs.RedisFailed(metrics.Set, err)
	}
	d.remember(jti, time.Now().Add(ttl).UnixMilli())
	if err := d.rdb.Publish(ctx, d.channel, strconv.FormatInt(ttl.Milliseconds(), 10)+":"+jti).Err(); err != nil {
		return d.errs.RedisFailed(metrics.Publish, err)
	}
	return nil
}

// Synced reports whether the mirror is trusted (Denies answers without
// Redis): resynced since its last subscription, and heard from recently.
func (d *Denylist) Synced() bool {
	return d.synced.Load() && time.Now().UnixNano()-d.heard.Load() < d.trustFor.Load()
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Ping is how long the subscription may stay silent before it is
	// pinged (default 250ms). The mirror is trusted for twice that after
	// anything was last heard on it, so a revocation lost on a broken
	// connection is answered from Redis within that time; a ping unanswered
	// for as long again breaks the subscription.
	Ping time.Duration
	// Logger receives the subscription's state changes (default: none).
	Logger *slog.Logger
}

// Follow keeps the mirror in sync until ctx is done: it subscribes to the
// revocation channel, resyncs the whole denylist on every (re)subscription,
// then applies each published revocation. Run it in its own goroutine.
func (d *Denylist) Follow(ctx context.Context, o FollowOptions) {
	if o.Ping <= 0 {
		o.Ping = 250 * time.Millisecond
	}
	d.trustFor.Store(int64(2 * o.Ping))
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.follow(ctx, o)
		wasSynced := d.synced.Swap(false)
		if ctx.Err() != nil {
			return
		}
		if wasSynced {
			backoff = 100 * time.Millisecond
		}
		o.Logger.WarnContext(ctx, "denylist mirror out of sync: asking Redis per request until it resubscribes",
			"error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Start runs Follow in a goroutine; the function it returns stops it and
// waits for it (call it before closing the Redis client).
func (d *Denylist) Start(ctx context.Context, o FollowOptions) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Follow(ctx, o)
	}()
	return func() { cancel(); <-done }
}

// follow runs one subscription until it breaks.
func (d *Denylist) follow(ctx context.Context, o FollowOptions) error {
	ps := d.rdb.Subscribe(ctx, d.channel)
	defer func() { _ = ps.Close() }()
	pinged := false
	lastPurge := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(ctx, o.Ping)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return fmt.Errorf("ping: %w", err)
				}
				pinged = true
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		pinged = false
		d.heard.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			// A new subscription: whatever was published before it is
			// only in the keys.
			d.synced.Store(false)
			if err := d.resync(ctx); err != nil {
				return fmt.Errorf("resync: %w", err)
			}
			d.heard.Store(time.Now().UnixNano())
			d.synced.Store(true)
			d.resyncs.Add(1)
			o.Logger.InfoContext(ctx, "denylist mirror in sync", "entries", d.size())
		case *redis.Message:
			d.apply(m.Payload)
		}
		if time.Since(lastPurge) > 30*time.Second {
			d.purge()
			lastPurge = time.Now()
		}
	}
}

// apply records one published revocation, "<ttl ms>:<jti>" or a user
// cutoff, "user:<ttl ms>:<user id>:<cutoff as stored>".
func (d *Denylist) apply(payload string) {
	if rest, ok := strings.CutPrefix(payload, userPayload); ok {
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			return
		}
		ms, err := strconv.ParseInt(parts[0], 10, 64)
		c, ok := parseCutoff(parts[2])
		if err != nil || !ok {
			return
		}
		d.rememberUser(parts[1], c, time.Now().UnixMilli()+ms)
		return
	}
	ttl, jti, ok := strings.Cut(payload, ":")
	ms, err := strconv.ParseInt(ttl, 10, 64)
	if !ok || err != nil || jti == "" {
		return
	}
	d.remember(jti, time.Now().UnixMilli()+ms)
}

func (d *Denylist) remember(jti string, expMilli int64) {
	d.mu.Lock()
	if expMilli > d.mirror[jti] {
		d.mirror[jti] = expMilli
	}
	d.mu.Unlock()
}

// rememberUser keeps the later of two cutoffs, for the longer of their lives.
func (d *Denylist) rememberUser(user string, c cutoff, expMilli int64) {
	d.mu.Lock()
	old, ok := d.users[user]
	if ok && old.before >= c.before {
		c = old
	}
	c.exp = max(old.exp, expMilli)
	d.users[user] = c
	d.mu.Unlock()
}

func (d *Denylist) size() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.mirror) + len(d.users)
}

// purge drops expired entries.
func (d *Denylist) purge() {
	now := time.Now().UnixMilli()
	d.mu.Lock()
	for jti, exp := range d.mirror {
		if exp <= now {
			delete(d.mirror, jti)
		}
	}
	for user, c := range d.users {
		if c.exp <= now {
			delete(d.users, user)
		}
	}
	d.mu.Unlock()
}

// resync adds every key of the denylist and every user cutoff to the
// mirror: a SCAN of their prefixes on the server, or on every master of a
// cluster.
func (d *Denylist) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	scan := func(ctx context.Context, c *redis.Client) error {
		if err := d.scan(ctx, c, d.prefix, false); err != nil {
			return err
		}
		return d.scan(ctx, c, d.userPrefix, true)
	}
	switch c := d.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return scan(ctx, c)
	default:
		return fmt.Errorf("cannot scan a %T", d.rdb)
	}
}

// scan adds to the mirror every key under prefix on c: token ids, or user
// cutoffs (users) with the cutoff their value holds.
func (d *Denylist) scan(ctx context.Context, c *redis.Client, prefix string, users bool) error {
	iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		ttls := make([]*redis.DurationCmd, len(keys))
		values := make([]*redis.StringCmd, len(keys))
		for i, k := range keys {
			ttls[i] = pipe.PTTL(ctx, k)
			if users {
				values[i] = pipe.Get(ctx, k)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		now := time.Now()
		for i, k := range keys {
			// -2: gone since the SCAN; -1: no expiry (not written by Revoke), kept an hour.
			var exp int64
			switch ttl := ttls[i].Val(); {
			case ttl > 0:
				exp = now.Add(ttl).UnixMilli()
			case ttl == -1:
				exp = now.Add(time.Hour).UnixMilli()
			default:
				continue
			}
			if !users {
				d.remember(strings.TrimPrefix(k, prefix), exp)
				continue
			}
			if c, ok := parseCutoff(values[i].Val()); ok {
				d.rememberUser(strings.TrimPrefix(k, prefix), c, exp)
			}
		}
		keys = keys[:0]
		return nil
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

// escapeGlob quotes the glob metacharacters of a SCAN MATCH pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
