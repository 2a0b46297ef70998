package app

import (
	"context"
	"io"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/server"
)

// RunWatchingCompares is Run with the hash of every bcrypt comparison of the
// password hasher passed to seen: how a test sees that a login checked a
// password, and at what cost, without timing it.
func RunWatchingCompares(seen func(hash []byte)) func(context.Context, func(string) string, io.Writer, func(server.Addrs)) error {
	compare := func(hash, password []byte) error {
		seen(hash)
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	return func(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error {
		return run(ctx, getenv, stdout, ready, compare)
	}
}
