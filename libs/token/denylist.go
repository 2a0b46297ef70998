package token

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/store"
)

// Denylist keeps the ids of revoked tokens in Redis until they expire.
type Denylist struct {
	rdb    redis.UniversalClient
	errs   store.Errors
	prefix string
}

// NewDenylist returns a denylist keeping its keys under keyPrefix +
// "denylist:"; its Redis failures are counted and mapped by errs.
func NewDenylist(rdb redis.UniversalClient, keyPrefix string, errs store.Errors) *Denylist {
	return &Denylist{rdb: rdb, errs: errs, prefix: keyPrefix + "denylist:"}
}

// Revoke puts jti on the denylist for ttl (the token's remaining life). A
// token that has already expired needs no entry.
func (d *Denylist) Revoke(ctx context.Context, jti string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	// Cover the verifiers' leeway on exp, so no verifier accepts it after the entry expires.
	if err := d.rdb.Set(ctx, d.prefix+jti, 1, ttl+Leeway).Err(); err != nil {
		return d.errs.Redis("set", err)
	}
	return nil
}

// Revoked reports whether jti is on the denylist.
func (d *Denylist) Revoked(ctx context.Context, jti string) (bool, error) {
	n, err := d.rdb.Exists(ctx, d.prefix+jti).Result()
	if err != nil {
		return false, d.errs.Redis("exists", err)
	}
	return n > 0, nil
}
